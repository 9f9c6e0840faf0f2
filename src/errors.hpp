// errors.hpp -- sf_err_text / sf_err_name behind the C boundary.
#pragma once

namespace evsf {
const char *error_text(int err);
const char *error_name(int err);
}  // namespace evsf
