#ifndef CONVEYOR_CZLIB_SHIM_H
#define CONVEYOR_CZLIB_SHIM_H

#include <zlib.h>

// deflateInit2 and inflateInit2 are macros (they pass the library version and
// the stream size), which Swift cannot call: wrap them.
static inline int conveyor_deflateInit2(z_streamp stream, int level) {
    // windowBits 15 + 16: write a gzip header and trailer; memLevel 8 is zlib's default.
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

static inline int conveyor_inflateInit2(z_streamp stream) {
    // windowBits 15 + 16: gzip only (a plain file is never mistaken for one).
    return inflateInit2(stream, 15 + 16);
}

// glibc's memmem (a GNU extension that Swift's Glibc module does not export):
// the history log's scans look for a byte string in megabytes at a time.
// Declared inside the function so that no second `memmem` reaches Swift.
static inline const void *conveyor_memmem(const void *haystack, size_t haystackLength, const void *needle, size_t needleLength) {
    extern void *memmem(const void *, size_t, const void *, size_t);
    return memmem(haystack, haystackLength, needle, needleLength);
}

#endif
