/*
 * llama2-bench: the header, the table and the JSON. Cells are the median of
 * the repetitions with half their range; the bound is the bandwidth divided
 * by the weight bytes each generated token reads.
 */
#include "bench_report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_bandwidth.h"
#include "bench_models.h"
#include "platform/platform.h"

/* ------------------------------------------------------- statistics */

typedef struct stat3 {
    double median, min, max;
} stat3;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static stat3 summarize(const double *v, int n) {
    double s[MAX_REPS];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    stat3 r = {n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2, s[0], s[n - 1]};
    return r;
}

/* "1234.5 ±1.2%": the median and half the range, relative to it; "n=1"
 * instead of a range after a single repetition. */
static void format_stat(char *buf, size_t size, stat3 s, int reps) {
    if (reps < 2 || s.median <= 0)
        snprintf(buf, size, "%9.1f %-6s", s.median, reps == 1 ? "n=1" : "");
    else
        snprintf(buf, size, "%9.1f ±%4.1f%%", s.median, (s.max - s.min) / 2 / s.median * 100);
}

/* ------------------------------------------------ machine and build */

static void cpu_info(char *model, size_t size, char *features, size_t fsize) {
    snprintf(model, size, "unknown");
    features[0] = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[8192];
    int have_model = 0, have_flags = 0;
    while (fgets(line, sizeof line, f) && !(have_model && have_flags)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t') value++;
        value[strcspn(value, "\n")] = 0;
        if (!have_model && (!strncmp(line, "model name", 10) || !strncmp(line, "Model", 5))) {
            snprintf(model, size, "%s", value);
            have_model = 1;
        } else if (!have_flags && (!strncmp(line, "flags", 5) || !strncmp(line, "Features", 8))) {
            static const char *const wanted[] = {"avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512bw",
                                                 "avx_vnni", "amx_int8", "asimd", "asimddp", "sve", "i8mm"};
            size_t used = 0;
            for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
                /* Whole words of the flag list. */
                size_t wl = strlen(wanted[i]);
                for (char *p = strstr(value, wanted[i]); p; p = strstr(p + 1, wanted[i])) {
                    if ((p == value || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == 0)) {
                        int n = snprintf(features + used, fsize - used, "%s%s", used ? " " : "", wanted[i]);
                        if (n > 0 && (size_t)n < fsize - used) used += (size_t)n;
                        break;
                    }
                }
            }
            have_flags = 1;
        }
    }
    fclose(f);
}

static const char *compiler_name(void) {
#if defined(__clang__)
    return "clang " __VERSION__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown compiler";
#endif
}

static const char *build_isa(void) {
    return ""
#if defined(__AVX512F__)
           " avx512f"
#endif
#if defined(__AVX2__)
           " avx2"
#endif
#if defined(__FMA__)
           " fma"
#endif
#if defined(__ARM_NEON)
           " neon"
#endif
#if defined(__ARM_FEATURE_DOTPROD)
           " dotprod"
#endif
#if defined(__OPTIMIZE__)
           " optimized"
#endif
        ;
}

void read_host_info(host_info *h) {
    cpu_info(h->cpu, sizeof h->cpu, h->features, sizeof h->features);
    h->n_cpus = l2_processor_count();
}

/* ------------------------------------------------------ the table */

void report_header(const bench_context *ctx, const host_info *h, const char *const *backends, int n_backends) {
    const bench_options *o = &ctx->options;
    printf("llama2-bench %s | cpu: %s, %ld logical CPUs [%s] | build: %s,%s\n", LLAMA2_VERSION, h->cpu, h->n_cpus,
           h->features, compiler_name(), build_isa());
    printf("backends:");
    for (int b = 0; b < n_backends; b++) printf(" %s", backends[b]);
    printf(" (compiled:");
    for (int i = 0; llama2_backend_name(i); i++) printf(" %s", llama2_backend_name(i));
    printf(")\nkernels: ");
    if (o->n_kernels) {
        for (int k = 0; k < o->n_kernels; k++) printf("%s%s", k ? ", " : "", o->kernels[k]);
        printf(" (one row each; this CPU's fastest: %s)\n", llama2_kernels_name());
    } else {
        printf("%s (chosen on this CPU)\n", llama2_kernels_name());
    }
}

static void print_rates(const bench_options *o, const double *gbs) {
    for (int t = 0; t < o->n_threads; t++)
        printf("%s %d thread%s %.1f GB/s", t ? "," : "", o->threads[t], o->threads[t] == 1 ? "" : "s", gbs[t]);
    printf("\n");
}

void report_bandwidth(const bench_context *ctx, const bw_result *bw, uint64_t l3_bytes) {
    const bench_options *o = &ctx->options;
    printf("memory read bandwidth (1 GiB read as 4 streams a thread, best of %d):", BW_PASSES);
    print_rates(o, bw->gbs);
    if (l3_bytes > 0 && bw->l3_gbs[0] > 0) {
        printf("L3 cache (%.0f MiB) read bandwidth (%.0f MiB read over and over):", (double)l3_bytes / (1 << 20),
               (double)(l3_bytes / 2 / 64 / 4096 * 4096 * 64) / (1 << 20));
        print_rates(o, bw->l3_gbs);
        printf("bound: the rate of the level the weights a token reads fit in (L3 or DRAM), over those bytes\n");
    } else {
        printf("L3 cache: %s; bound: the memory rate over the weights a token reads\n",
               l3_bytes > 0 ? "not measured" : "none known");
    }
}

void report_table_header(const bench_context *ctx) {
    const bench_options *o = &ctx->options;
    printf("reps: %d", o->reps);
    if (o->max_time > 0) printf(" (fewer once a test has run %.0f s)", o->max_time);
    printf("; cells: median tokens/s ±half the min..max range, n=1 for a single rep\n");
    printf("pp: a prompt from position 0 in blocks of %d; tg: one position a step after a 1-token prompt",
           LLAMA2_DEFAULT_BATCH);
    if (o->grammar)
        printf(", each token sampled under the grammar %s", o->grammar);
    else if (o->tokenizer)
        printf(", each token sampled (no grammar)");
    printf("\n\n");

    char label[32];
    printf("%-14s %-6s %-5s %-11s %3s %8s", "shape", "type", "back", "kernels", "thr", "MiB");
    for (int p = 0; p < o->n_pp; p++) {
        snprintf(label, sizeof label, "pp%d t/s", o->pp[p]);
        printf(" %16s", label);
    }
    snprintf(label, sizeof label, "tg%d t/s", o->tg);
    printf(" %16s %9s %5s %-4s %8s\n", label, "bound t/s", "%bnd", "lvl", "peak MiB");
}

void report_row(const bench_context *ctx, const row *w) {
    const bench_options *o = &ctx->options;
    char type_label[16], cell[64];
    if (w->type == TYPE_Q8)
        snprintf(type_label, sizeof type_label, "q8/%d", w->config.group_size);
    else if (w->type == TYPE_Q4_0 || w->type == TYPE_Q4_K_M)
        snprintf(type_label, sizeof type_label, "%s", TYPE_NAMES[w->type]);
    else
        snprintf(type_label, sizeof type_label, "f32");
    printf("%-14s %-6s %-5s %-11s %3d %8.1f", SHAPES[w->shape].name, type_label, w->backend, w->result.level,
           w->threads, (double)w->file_bytes / (1 << 20));
    for (int p = 0; p < o->n_pp; p++) {
        format_stat(cell, sizeof cell, summarize(w->result.pp[p], w->result.n_pp[p]), w->result.n_pp[p]);
        printf(" %16s", cell);
    }
    stat3 tg = summarize(w->result.tg, w->result.n_tg);
    format_stat(cell, sizeof cell, tg, w->result.n_tg);
    printf(" %16s", cell);
    if (w->bandwidth_gbs > 0) {
        double bound = w->bandwidth_gbs * 1e9 / (double)w->bytes_per_token;
        printf(" %9.1f %4.0f%% %-4s", bound, tg.median / bound * 100, w->in_l3 ? "L3" : "DRAM");
    } else {
        printf(" %9s %5s %-4s", "-", "-", "-");
    }
    printf(" %8.1f\n", w->result.peak_rss_mib);
    fflush(stdout);
}

/* --------------------------------------------------------------- json */

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_stat(FILE *f, const char *name, const double *v, int n) {
    stat3 s = summarize(v, n);
    fprintf(f, ", \"%s\": {\"median\": %.3f, \"min\": %.3f, \"max\": %.3f, \"values\": [", name, s.median, s.min, s.max);
    for (int i = 0; i < n; i++) fprintf(f, "%s%.3f", i ? ", " : "", v[i]);
    fprintf(f, "]}");
}

/* The --json file, opened (or the run fails), its array begun. */
static FILE *json_open(const bench_context *ctx) {
    const char *path = ctx->options.json_path;
    FILE *f = fopen(path, "w");
    if (!f) bench_fail(ctx, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "[\n");
    return f;
}

/* Ends the array and closes the file (or the run fails). */
static void json_close(const bench_context *ctx, FILE *f) {
    fprintf(f, "]\n");
    if (fclose(f) != 0) bench_fail(ctx, "cannot write %s: %s", ctx->options.json_path, strerror(errno));
}

/* A row's first fields: what it ran, where and at which kernel level. */
static void json_row_start(FILE *f, int shape_index, const char *backend, const char *level) {
    fprintf(f, "  {\"shape\": ");
    json_string(f, SHAPES[shape_index].name);
    fprintf(f, ", \"backend\": ");
    json_string(f, backend);
    fprintf(f, ", \"kernels\": ");
    json_string(f, level);
}

/* A row's last fields: its peak memory and the host, then the row's end. */
static void json_row_end(FILE *f, const host_info *h, double peak_rss_mib, int last) {
    fprintf(f, "\"peak_rss_mib\": %.1f, \"cpu\": ", peak_rss_mib);
    json_string(f, h->cpu);
    fprintf(f, ", \"compiler\": ");
    json_string(f, compiler_name());
    fprintf(f, ", \"version\": \"%s\"}%s\n", LLAMA2_VERSION, last ? "" : ",");
}

void write_json(const bench_context *ctx, const host_info *h, const row *rows, size_t n_rows) {
    const bench_options *o = &ctx->options;
    FILE *f = json_open(ctx);
    char label[32];
    for (size_t i = 0; i < n_rows; i++) {
        const row *w = &rows[i];
        json_row_start(f, w->shape, w->backend, w->result.level);
        fprintf(f, ", \"type\": \"%s\", \"group_size\": %d, \"threads\": %d, \"reps_requested\": %d",
                TYPE_NAMES[w->type], w->config.group_size, w->threads, o->reps);
        fprintf(f, ", \"dim\": %d, \"hidden_dim\": %d, \"n_layers\": %d, \"n_heads\": %d, \"n_kv_heads\": %d",
                w->config.dim, w->config.hidden_dim, w->config.n_layers, w->config.n_heads, w->config.n_kv_heads);
        fprintf(f, ", \"vocab_size\": %d, \"seq_len\": %d, \"shared_classifier\": %d", w->config.vocab_size,
                w->config.seq_len, w->config.shared_classifier);
        fprintf(f, ", \"file_bytes\": %llu, \"bytes_per_token\": %llu", (unsigned long long)w->file_bytes,
                (unsigned long long)w->bytes_per_token);
        for (int p = 0; p < o->n_pp; p++) {
            snprintf(label, sizeof label, "pp%d", o->pp[p]);
            json_stat(f, label, w->result.pp[p], w->result.n_pp[p]);
        }
        snprintf(label, sizeof label, "tg%d", o->tg);
        json_stat(f, label, w->result.tg, w->result.n_tg);
        if (w->bandwidth_gbs > 0) {
            double bound = w->bandwidth_gbs * 1e9 / (double)w->bytes_per_token;
            fprintf(f,
                    ", \"bandwidth_gbs\": %.3f, \"bound_level\": \"%s\", \"tg_bound\": %.3f, "
                    "\"tg_fraction_of_bound\": %.4f",
                    w->bandwidth_gbs, w->in_l3 ? "L3" : "DRAM", bound,
                    summarize(w->result.tg, w->result.n_tg).median / bound);
        } else {
            fprintf(f, ", \"bandwidth_gbs\": null, \"bound_level\": null, \"tg_bound\": null, "
                       "\"tg_fraction_of_bound\": null");
        }
        fprintf(f, ", ");
        json_row_end(f, h, w->result.peak_rss_mib, i + 1 == n_rows);
    }
    json_close(ctx, f);
}

/* ---------------------------------------------------------- parallel */

/* A row's figures as llama-batched-bench derives them: the median time of
 * each phase; S_PP = B*PP/T_PP, S_TG = B*TG/T_TG, S = N_KV/T. */
typedef struct parallel_figures {
    int n_kv;
    double t_pp, s_pp, t_tg, s_tg, t, s;
} parallel_figures;

static parallel_figures figures_of(const parallel_row *w) {
    parallel_figures f;
    const int n = w->result.n_reps;
    f.n_kv = w->sequences * (w->pp + w->tg);
    f.t_pp = summarize(w->result.t_pp, n).median;
    f.t_tg = summarize(w->result.t_tg, n).median;
    f.t = f.t_pp + f.t_tg;
    f.s_pp = f.t_pp > 0 ? (double)w->sequences * w->pp / f.t_pp : 0;
    f.s_tg = f.t_tg > 0 ? (double)w->sequences * w->tg / f.t_tg : 0;
    f.s = f.t > 0 ? f.n_kv / f.t : 0;
    return f;
}

void report_parallel_header(const bench_context *ctx) {
    const bench_options *o = &ctx->options;
    printf("reps: %d", o->reps);
    if (o->max_time > 0) printf(" (fewer once a row has run %.0f s)", o->max_time);
    printf("; times: the median over the reps\n");
    printf("B sequences: their PP-token prompts in one batch, then TG tokens each, one batch of B rows a step\n");
}

void report_parallel_group(const bench_context *ctx, int s, int type, const char *backend, const char *level,
                           int threads) {
    (void)ctx;
    char type_label[16];
    if (type == TYPE_Q8)
        snprintf(type_label, sizeof type_label, "q8/%d", shape_config(&SHAPES[s], type).group_size);
    else
        snprintf(type_label, sizeof type_label, "%s", TYPE_NAMES[type]);
    printf("\n%s %s, backend %s, kernels %s, %d thread%s\n\n", SHAPES[s].name, type_label, backend,
           level[0] ? level : llama2_kernels_name(), threads, threads == 1 ? "" : "s");
    printf("|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |\n");
    printf("|-------|--------|------|--------|----------|----------|----------|----------|----------|----------|\n");
    fflush(stdout);
}

void report_parallel_row(const parallel_row *w) {
    parallel_figures f = figures_of(w);
    printf("|%6d | %6d | %4d | %6d | %8.3f | %8.2f | %8.3f | %8.2f | %8.3f | %8.2f |\n", w->pp, w->tg, w->sequences,
           f.n_kv, f.t_pp, f.s_pp, f.t_tg, f.s_tg, f.t, f.s);
    fflush(stdout);
}

void write_parallel_json(const bench_context *ctx, const host_info *h, const parallel_row *rows, size_t n_rows) {
    const bench_options *o = &ctx->options;
    FILE *f = json_open(ctx);
    for (size_t i = 0; i < n_rows; i++) {
        const parallel_row *w = &rows[i];
        parallel_figures g = figures_of(w);
        json_row_start(f, w->shape, w->backend, w->result.level);
        fprintf(f, ", \"type\": \"%s\", \"group_size\": %d, \"threads\": %d, \"reps_requested\": %d",
                TYPE_NAMES[w->type], w->group_size, w->threads, o->reps);
        fprintf(f, ", \"pp\": %d, \"tg\": %d, \"b\": %d, \"n_kv\": %d", w->pp, w->tg, w->sequences, g.n_kv);
        fprintf(f,
                ", \"t_pp\": %.6f, \"s_pp\": %.3f, \"t_tg\": %.6f, \"s_tg\": %.3f, \"t\": %.6f, \"s\": %.3f",
                g.t_pp, g.s_pp, g.t_tg, g.s_tg, g.t, g.s);
        fprintf(f, ", \"t_pp_values\": [");
        for (int k = 0; k < w->result.n_reps; k++) fprintf(f, "%s%.6f", k ? ", " : "", w->result.t_pp[k]);
        fprintf(f, "], \"t_tg_values\": [");
        for (int k = 0; k < w->result.n_reps; k++) fprintf(f, "%s%.6f", k ? ", " : "", w->result.t_tg[k]);
        fprintf(f, "], ");
        json_row_end(f, h, w->result.peak_rss_mib, i + 1 == n_rows);
    }
    json_close(ctx, f);
}
