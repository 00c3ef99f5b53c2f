#ifndef CONVEYOR_CHIREDIS_SHIM_H
#define CONVEYOR_CHIREDIS_SHIM_H

// hiredis 0.14 (Debian 12) installs <hiredis/hiredis.h>; where pkg-config is
// asked (not on Linux, see Package.swift) it also adds -I<prefix>/include/hiredis,
// the only path some 1.x layouts provide.
#if __has_include(<hiredis/hiredis.h>)
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#else
#include <hiredis.h>
#include <read.h>
#endif

#endif
