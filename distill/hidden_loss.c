// hidden_loss.c: see hidden_loss.h.
#include "hidden_loss.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../models/file_io.h"

void hidden_layer_map_even(int Ls, int Lt, int* map) {
    for (int i = 0; i < Ls; i++) map[i] = (i + 1) * Lt / Ls - 1;
}

int hidden_layer_map(const char* dir, int Ls, int Lt, int* map, Err* e) {
    char path[4200];
    snprintf(path, sizeof path, "%s/arbor_lineage.json", dir);
    if (access(path, F_OK) != 0) {
        hidden_layer_map_even(Ls, Lt, map);
        return 0;
    }
    char* text = file_read_all(path, NULL, e);
    if (!text) return -1;
    cJSON* root = cJSON_Parse(text);
    free(text);
    const cJSON* layers = root ? cJSON_GetObjectItemCaseSensitive(root, "teacher_layers") : NULL;
    int rc = 0;
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) != Ls) {
        rc = err_set(e, "%s: 'teacher_layers' must list one teacher layer for each of the student's %d layers", path, Ls);
    } else {
        for (int i = 0; i < Ls && !rc; i++) {
            const cJSON* j = cJSON_GetArrayItem(layers, i);
            if (!cJSON_IsNumber(j) || j->valueint < 0 || j->valueint >= Lt)
                rc = err_set(e, "%s: teacher_layers[%d] is not a layer of the %d-layer teacher", path, i, Lt);
            else
                map[i] = j->valueint;
        }
    }
    cJSON_Delete(root);
    return rc;
}

double hidden_loss(HiddenLossKind kind, const float* s, const float* t, int N, int C, float scale, float* d) {
    double* row = xmalloc(sizeof(double) * (size_t)N);
#pragma omp parallel for if (N * C > 65536)
    for (int n = 0; n < N; n++) {
        const float *a = s + (size_t)n * C, *b = t + (size_t)n * C;
        float* g = d + (size_t)n * C;
        if (kind == HIDDEN_COSINE) {  // 1 - a.b / (|a| |b|)
            double ab = 0, aa = 0, bb = 0;
            for (int c = 0; c < C; c++) ab += (double)a[c] * b[c], aa += (double)a[c] * a[c], bb += (double)b[c] * b[c];
            double na = sqrt(aa) + 1e-12, nb = sqrt(bb) + 1e-12, cosv = ab / (na * nb);
            row[n] = 1.0 - cosv;
            for (int c = 0; c < C; c++) g[c] = (float)(scale / N * -(b[c] / (na * nb) - cosv * a[c] / (na * na)));
        } else {  // mean over tokens and channels of (a - b)^2
            double acc = 0;
            for (int c = 0; c < C; c++) {
                double diff = (double)a[c] - b[c];
                acc += diff * diff;
                g[c] = (float)(scale * 2.0 * diff / ((double)N * C));
            }
            row[n] = acc / C;
        }
    }
    double total = 0;
    for (int n = 0; n < N; n++) total += row[n];
    free(row);
    return total / N;
}
