#include "core/error.h"

#include <string>

namespace pimqat {

void assertion_failed(const char* expression, const std::source_location& where) {
  throw Error(std::string("internal error (please report): assertion `") + expression + "` failed at " +
              where.file_name() + ":" + std::to_string(where.line()) + " in " + where.function_name());
}

}  // namespace pimqat
