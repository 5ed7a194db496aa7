// Status propagation helpers. Abseil 20220623 ships no RETURN_IF_ERROR; this is
// the one place gpumig defines it.
#ifndef GPUMIG_CORE_BASE_STATUS_MACROS_H_
#define GPUMIG_CORE_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define GPUMIG_STATUS_CONCAT_INNER_(a, b) a##b
#define GPUMIG_STATUS_CONCAT_(a, b) GPUMIG_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status gpumig_status_ = (expr);          \
    if (!gpumig_status_.ok()) return gpumig_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, StatusOrExpr());` declares x from the value or
// returns the error.
#define ASSIGN_OR_RETURN(lhs, expr)                                         \
  ASSIGN_OR_RETURN_IMPL_(GPUMIG_STATUS_CONCAT_(gpumig_statusor_, __LINE__), \
                         lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(var, lhs, expr)   \
  auto var = (expr);                             \
  if (!var.ok()) return std::move(var).status(); \
  lhs = std::move(var).value()

#endif  // GPUMIG_CORE_BASE_STATUS_MACROS_H_
