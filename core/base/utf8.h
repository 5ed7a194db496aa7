// Moved to common/utf8.h (one UTF-8 decoder for core, daemon and client).
// This forwarding header goes once nothing includes it any more.
#ifndef GPUMIG_CORE_BASE_UTF8_H_
#define GPUMIG_CORE_BASE_UTF8_H_

#include "common/utf8.h"

#endif  // GPUMIG_CORE_BASE_UTF8_H_
