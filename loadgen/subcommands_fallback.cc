// Stand-ins for `loadgen sweep` / `loadgen report` while loadgen/sweep_cmd.cc / report_cmd.cc (the report
// engineer's) are not in the tree, so the binary links. loadgen/CMakeLists.txt sets LOADGEN_HAVE_*_CMD from
// which of those files exist (a changed definition recompiles this file), and drops this file once both do.
#include <cstdio>

#include "loadgen/subcommands.h"

namespace loadgen {

#if !LOADGEN_HAVE_SWEEP_CMD
int sweep_main(int, char**) {
  std::fprintf(stderr, "loadgen sweep: not part of this build (loadgen/sweep_cmd.cc is missing)\n");
  return 2;
}
#endif

#if !LOADGEN_HAVE_REPORT_CMD
int report_main(int, char**) {
  std::fprintf(stderr, "loadgen report: not part of this build (loadgen/report_cmd.cc is missing)\n");
  return 2;
}
#endif

}  // namespace loadgen
