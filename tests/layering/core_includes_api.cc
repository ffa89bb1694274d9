// Compiled with core's include path by the `layering_rejects_upward_include` test, which passes
// only if the compiler cannot find the api header: core must not depend on the layers above it.
#include "api/handlers.h"
