#!/usr/bin/env node
/** tsmpid: the host daemon that runs ranks for remote launchers (not yet built; see issue 4). */
process.stderr.write('tsmpid: the host daemon is not available in this version yet\n');
process.exitCode = 2;
export {};
