// gpumigctl's commands, one group per gpumig.v1 service, each in its own
// file (ctl_<service>_commands.cc). The main library (gpumigctl_main.h)
// lists them in this order: object, fence, region, fault, daemon.
#ifndef GPUMIG_CLIENT_CTL_COMMANDS_H_
#define GPUMIG_CLIENT_CTL_COMMANDS_H_

#include <vector>

#include "client/ctl_context.h"

namespace gpumig::cli {

// ObjectService: create, destroy, get, list, write, read, migrate, pin,
// unpin, exec fill, exec copy, exec checksum.
std::vector<Command> ObjectCommands();
// FenceService: fence get, fence wait, fence watch.
std::vector<Command> FenceCommands();
// RegionService: regions, evict.
std::vector<Command> RegionCommands();
// FaultService: fault inject, fault clear, fault list.
std::vector<Command> FaultCommands();
// DaemonService: devices, stats, info, ping, selftest.
std::vector<Command> DaemonCommands();

}  // namespace gpumig::cli

#endif  // GPUMIG_CLIENT_CTL_COMMANDS_H_
