// replay_main.c: runs a fuzz target over files, without libFuzzer: the regression cases (every crash
// input ever found) and the seed corpus, for ctest with any compiler (and under the sanitizers in a
// sanitizer build). Usage: replay_TARGET FILE_OR_DIR...
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t n);

static int run_file(const char* path) {
    FILE* f = fopen(path, "rb");
    if (!f) return fprintf(stderr, "replay: cannot open %s\n", path), 1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t* buf = malloc((size_t)(n > 0 ? n : 1));
    size_t got = n > 0 ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 0;
}

int main(int argc, char** argv) {
    int files = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) continue;  // an absent corpus folder is not an error
        if (!S_ISDIR(st.st_mode)) {
            bad |= run_file(argv[i]), files++;
            continue;
        }
        DIR* d = opendir(argv[i]);
        for (struct dirent* ent; d && (ent = readdir(d));) {
            if (ent->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], ent->d_name);
            bad |= run_file(path), files++;
        }
        if (d) closedir(d);
    }
    printf("replayed %d inputs\n", files);
    return bad;
}
