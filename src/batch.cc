// Batch and delivery helpers (header-only today; the file keeps the library layout).
#include "src/batch.h"
