/* libFuzzer target: the data readers (TSV, CSV, JSON Lines, lines) on the
 * input, with option bits from its first byte; then label map build, JSON
 * round trip, label mapping and a batch plan over fake token counts.
 * Build: sh fuzz/build.sh (target fuzz_data). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t flags = data[0];
    ll_data_options o;
    ll_data_options_default(&o);
    static const ll_data_format fmts[4] = {LL_DATA_TSV, LL_DATA_CSV, LL_DATA_JSONL, LL_DATA_LINES};
    o.format = fmts[flags & 3];
    o.skip_invalid = (flags >> 2) & 1;
    o.multi_label = (flags >> 3) & 1;
    o.no_quotes = (flags >> 4) & 1;
    o.strip_text = (flags >> 5) & 1;
    if (flags & 0x40) {
        o.text_columns = o.format == LL_DATA_JSONL ? "a,b" : "1,0";
        o.label_column = o.format == LL_DATA_JSONL ? "y" : "2";
    }
    o.label_sep = "|";
    ll_dataset *ds = NULL;
    ll_error err;
    if (ll_dataset_load_memory(&ds, (const char *)data + 1, size - 1, "fuzz.data", &o, &err)) return 0;
    for (size_t i = 0; i < ds->n; i++) {
        ds->ex[i].n_tok = (int32_t)(ds->ex[i].text_len % 37 + 1);
        (void)ll_example_raw_label(ds, i, 0);
    }
    ll_labelmap *m = NULL, *m2 = NULL;
    if (ds->has_labels && ll_labelmap_build(&m, ds, &err) == 0) {
        cJSON *j = cJSON_CreateObject();
        if (j && ll_labelmap_add_to_json(m, j, &err) == 0 && ll_labelmap_from_json(&m2, j, "fuzz", &err) == 0) {
            if (m2->n != m->n) abort();
            for (int k = 0; k < m->n; k++)
                if (strcmp(m->names[k], m2->names[k])) abort();
        }
        cJSON_Delete(j);
        if (ll_dataset_apply_labels(ds, m, &err) == 0) {
            int64_t *counts = calloc((size_t)m->n, sizeof *counts);
            if (counts) ll_dataset_label_counts(ds, counts);
            free(counts);
        }
    }
    ds->tokenized = 1;
    ll_batching_options bo = {.max_batch_tokens = 40, .max_batch_seqs = flags & 0x80 ? 3 : 0, .shuffle = 1, .seed = flags};
    ll_batch_plan plan;
    if (ll_batch_plan_make(&plan, ds, &bo, &err) == 0) {
        size_t seen = 0;
        for (size_t b = 0; b < plan.n_batches; b++) seen += (size_t)(plan.bounds[b + 1] - plan.bounds[b]);
        if (seen != ds->n) abort();
        ll_batch_plan_free(&plan);
    }
    ll_labelmap_free(m);
    ll_labelmap_free(m2);
    ll_dataset_free(ds);
    return 0;
}
