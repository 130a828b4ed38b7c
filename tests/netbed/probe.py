#!/usr/bin/env python3
"""Tiny TCP probe for the network test bed (standard library only).

  probe.py serve HOST PORT SECONDS      accept connections until SECONDS pass; print
                                        "peer ADDR" per connection and, per connection,
                                        "received BYTES in SECONDS s"
  probe.py connect HOST PORT TIMEOUT    exit 0 if a TCP connection is established
  probe.py send HOST PORT SECONDS       send as fast as possible for SECONDS
"""
import socket
import sys
import time


def serve(host, port, seconds):
    deadline = time.time() + seconds
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(8)
        print("listening", flush=True)
        while time.time() < deadline:
            s.settimeout(max(0.1, deadline - time.time()))
            try:
                conn, addr = s.accept()
            except socket.timeout:
                break
            print("peer", addr[0], flush=True)
            total, start = 0, time.time()
            conn.settimeout(max(0.1, deadline - time.time()))
            try:
                while True:
                    data = conn.recv(1 << 16)
                    if not data:
                        break
                    total += len(data)
            except socket.timeout:
                pass
            conn.close()
            print("received %d in %.3f s" % (total, time.time() - start), flush=True)


def connect(host, port, timeout):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return 0
    except OSError:
        return 1


def send(host, port, seconds):
    chunk = b"\0" * (1 << 16)
    with socket.create_connection((host, port), timeout=10) as s:
        end = time.time() + seconds
        while time.time() < end:
            s.sendall(chunk)
    return 0


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "serve":
        serve(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif mode == "connect":
        sys.exit(connect(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    elif mode == "send":
        sys.exit(send(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    else:
        sys.exit("probe.py: unknown mode " + mode)
