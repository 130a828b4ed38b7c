// common/data_error.h — the error an example throws for a data set that
// cannot be read or used; runExample() (example_main.h) turns it into exit
// code 2 with one line per host.
#pragma once

#include <stdexcept>

namespace hearth::examples {

// what() is one line naming the file or directory.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace hearth::examples
