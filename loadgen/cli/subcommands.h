// The `loadgen` binary's subcommands besides the default (one benchmark run): main.cc dispatches
// `loadgen sweep ...` and `loadgen report DIR...` here. argv[0] is the subcommand's name ("sweep", "report").
// Implemented in loadgen/sweep_cmd.cc and loadgen/report_cmd.cc.
#pragma once

namespace loadgen {

int sweep_main(int argc, char** argv);
int report_main(int argc, char** argv);
int compare_main(int argc, char** argv);  ///< loadgen/cli/compare_cmd.cc

}  // namespace loadgen
