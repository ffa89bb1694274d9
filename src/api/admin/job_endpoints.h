// The admin API's training jobs (training/job_queue.h):
//   GET  /admin/jobs                 every job kept, newest first
//   POST /admin/jobs                 {"model": "eta", "parent": 3}: queue one (parent optional)
//   GET  /admin/jobs/<id>            one job, with the held-out metric per round
//   GET  /admin/jobs/<id>/logs       its log lines
//   POST /admin/jobs/<id>/cancel     stop it
#pragma once

#include <string_view>

#include "api/admin/admin_endpoints.h"

namespace forklift {

// Routes /admin/jobs and /admin/jobs/... (`rest`: the path after "/admin/jobs").
void route_jobs(const AdminCall& call, std::string_view rest);

}  // namespace forklift
