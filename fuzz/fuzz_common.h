// fuzz_common.h: what every fuzz target shares. Parsers here read files, so each input is written to a
// per-process scratch file (in /dev/shm when present) and the parser opened on it. A target returns 0;
// a crash, a sanitizer report or an abort is the finding.
#pragma once
#include <stddef.h>
#include <stdint.h>

// The scratch folder of this process (created once).
const char* fuzz_dir(void);
// Writes data to fuzz_dir()/name; returns the path (a static buffer per name slot).
const char* fuzz_file(const char* name, const uint8_t* data, size_t n);
