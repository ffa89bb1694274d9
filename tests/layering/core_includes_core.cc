// The control for `layering_rejects_upward_include`: the same include path finds core's own
// headers and those below it, so the other test fails for the right reason.
#include "common/json_writer.h"
#include "core/model_registry.h"
#include "observability/metrics.h"
