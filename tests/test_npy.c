// test_npy.c: .npy output as NumPy's format 1.0 defines it.
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "models/file_io.h"
#include "models/npy.h"

Test(npy, header_layout_and_round_trip) {
    char dir[256], path[512];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/x.npy", dir);
    float data[6] = {1, 2, 3, 4, 5, -6.5f};
    Err e;
    cr_assert_eq(npy_write_f32(path, data, 2, 3, &e), 0, "%s", e.msg);
    size_t len;
    char* raw = file_read_all(path, &len, &e);
    cr_assert_not_null(raw);
    cr_expect_eq(memcmp(raw, "\x93NUMPY\x01\x00", 8), 0);
    size_t hlen = (unsigned char)raw[8] | (size_t)(unsigned char)raw[9] << 8;
    cr_expect_eq((10 + hlen) % 64, 0, "data aligned to 64 bytes");
    cr_expect_eq(raw[10 + hlen - 1], '\n');
    cr_expect(contains(raw + 10, "'shape': (2, 3)"));
    cr_expect_eq(len, 10 + hlen + sizeof data);
    free(raw);
    int rows, cols;
    float* back = npy_read_f32(path, &rows, &cols, &e);
    cr_assert_not_null(back, "%s", e.msg);
    cr_expect_eq(rows, 2);
    cr_expect_eq(cols, 3);
    cr_expect_arr_eq(back, data, sizeof data);
    free(back);
}

Test(npy, refuses_other_files) {
    char dir[256], path[512];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/bad.npy", dir);
    write_text(path, "not numpy at all");
    int r, c;
    Err e;
    cr_expect_null(npy_read_f32(path, &r, &c, &e));
    cr_expect(contains(e.msg, "bad.npy"), "%s", e.msg);
}
