// test_safetensors.c: the safetensors reader and writer, and every malformed file we must refuse
// with one line naming the file and the problem.
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "kernels/dtype.h"
#include "models/safetensors.h"

static char dir[256];

static void setup(void) { make_temp_dir(dir, sizeof dir); }
TestSuite(safetensors, .init = setup);

// Writes [u64 header_len][header][data_len bytes of 0x11] to dir/name; returns the path.
static const char* craft(const char* name, uint64_t header_len, const char* header, size_t data_len) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t hl = strlen(header);
    uint8_t* buf = calloc(1, 8 + hl + data_len);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(header_len >> (8 * i));
    memcpy(buf + 8, header, hl);
    memset(buf + 8 + hl, 0x11, data_len);
    write_bytes(path, buf, 8 + hl + data_len);
    free(buf);
    return path;
}

static void expect_error(const char* path, const char* phrase) {
    StFile f;
    Err e = {{0}, 0};
    cr_assert_eq(st_open(&f, path, &e), -1, "%s should be refused", path);
    cr_expect(contains(e.msg, path), "message names the file: %s", e.msg);
    cr_expect(contains(e.msg, phrase), "message says '%s': %s", phrase, e.msg);
    cr_expect(!contains(e.msg, "\n"), "one line: %s", e.msg);
}

#define H(s) craft("x.safetensors", strlen(s), s, 16)

Test(safetensors, truncated_file) {
    const char* path = craft("short.safetensors", 0, "", 0);
    write_bytes(path, "\x05\x00\x00", 3);
    expect_error(path, "truncated");
}

Test(safetensors, header_length_beyond_file) {
    expect_error(craft("x.safetensors", 1000, "{}", 0), "header length 1000 runs past file size");
}

Test(safetensors, malformed_header_json) { expect_error(H("{\"a\": {\"dtype\": "), "malformed header JSON"); }

Test(safetensors, offsets_out_of_range) {
    expect_error(H("{\"a\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}"), "ends at byte");
}

Test(safetensors, offsets_overlapping) {
    expect_error(H("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}"),
                 "overlap");
}

// what the format's own loader refuses, refused here too
Test(safetensors, trailing_bytes_after_the_last_tensor) {
    expect_error(H("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"), "8 trailing bytes");
}

Test(safetensors, gap_between_tensors) {
    expect_error(H("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}"),
                 "4 unaccounted bytes before tensor 'b'");
}

Test(safetensors, header_not_utf8) {
    expect_error(H("{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}"), "not UTF-8");
    expect_error(H("{\"a\xc0\xaf\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}"), "not UTF-8");
}

Test(safetensors, header_must_start_with_a_brace) {
    expect_error(H(" {\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}"), "does not start with '{'");
}

Test(safetensors, duplicate_tensor_names) {
    expect_error(H("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}"),
                 "tensor 'a' is named twice");
}

Test(safetensors, offsets_reversed) {
    expect_error(H("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}"), "ending before they begin");
}

Test(safetensors, unknown_dtype) {
    expect_error(H("{\"a\":{\"dtype\":\"F12\",\"shape\":[2],\"data_offsets\":[0,4]}}"), "unknown dtype 'F12'");
}

Test(safetensors, size_disagrees_with_shape) {
    expect_error(H("{\"a\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,8]}}"), "need 6");
}

Test(safetensors, malformed_shape) {
    expect_error(H("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}"), "malformed shape");
}

Test(safetensors, missing_file) { expect_error("/nonexistent/arbor/model.safetensors", "cannot open"); }

Test(safetensors, known_but_unreadable_dtype_is_reported_on_read) {
    const char* path = H("{\"a\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}");
    StFile f;
    Err e;
    cr_assert_eq(st_open(&f, path, &e), 0, "%s", e.msg);
    float out[2];
    cr_expect_eq(st_read_f32(&f, st_find(&f, "a"), out, &e), -1);
    cr_expect(contains(e.msg, "dtype I64"), "%s", e.msg);
    st_close(&f);
}

// ---------------------------------------------------------------------------------------------
// writer -> reader round trip

static float values_a[6] = {1.0f, -2.5f, 3.1415926f, 1e-20f, 65504.0f, -0.0f};
static float values_b[3] = {0.1f, 0.2f, 0.3f};

static void fill(void* ctx, int index, float* dst) {
    (void)ctx;
    if (index == 0)
        memcpy(dst, values_a, sizeof values_a);
    else
        memcpy(dst, values_b, sizeof values_b);
}

static void round_trip(StDtype dtype) {
    char path[512];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    StSpec specs[2] = {{"weight.a", dtype, 2, {2, 3}}, {"bias.b", dtype, 1, {3}}};
    Err e;
    cr_assert_eq(st_write(path, specs, 2, fill, NULL, &e), 0, "%s", e.msg);
    StFile f;
    cr_assert_eq(st_open(&f, path, &e), 0, "%s", e.msg);
    cr_assert_eq(f.n_tensors, 2);
    const StTensor* a = st_find(&f, "weight.a");
    cr_assert_not_null(a);
    cr_expect_eq(a->ndim, 2);
    cr_expect_eq(a->shape[0], 2);
    cr_expect_eq(a->shape[1], 3);
    float out[6];
    cr_assert_eq(st_read_f32(&f, a, out, &e), 0);
    for (int i = 0; i < 6; i++) {
        float want = dtype == ST_F32 ? values_a[i] : bf16_to_f32(f32_to_bf16(values_a[i]));
        cr_expect_eq(memcmp(&out[i], &want, 4), 0, "element %d: %g vs %g", i, out[i], want);
    }
    cr_assert_eq(st_read_f32(&f, st_find(&f, "bias.b"), out, &e), 0);
    cr_expect_float_eq(out[2], dtype == ST_F32 ? 0.3f : bf16_to_f32(f32_to_bf16(0.3f)), 0.0f);
    // the data section starts 8-byte aligned, as the format recommends
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | f.map[i];
    cr_expect_eq(hl % 8, 0);
    st_close(&f);
}

Test(safetensors, round_trip_f32) { round_trip(ST_F32); }
Test(safetensors, round_trip_bf16) { round_trip(ST_BF16); }

Test(safetensors, writer_refuses_f16) {
    char path[512];
    snprintf(path, sizeof path, "%s/f16.safetensors", dir);
    StSpec specs[1] = {{"a", ST_F16, 1, {3}}};
    Err e;
    cr_expect_eq(st_write(path, specs, 1, fill, NULL, &e), -1);
    cr_expect(contains(e.msg, "F32 or BF16"), "%s", e.msg);
}
