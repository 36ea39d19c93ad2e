/* lsllama inspect MODEL: architecture, hyper-parameters, metadata, tensor
 * table, parameter count and memory. Reads the checkpoint without
 * converting weights, so it also works on files whose tensor types the
 * loader does not support. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "cli_util.h"
#include "model/checkpoint.h"
#include "model/model.h"

static void print_meta(void *ctx, const char *key, const char *value) {
    (void)ctx;
    printf("  %-44s %s\n", key, value);
}

static void human_bytes(double b, char *buf, size_t cap) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) b /= 1024, u++;
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    int show_meta = 1, show_tensors = 1;
    ll_load_options lo = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: lsllama inspect MODEL [--no-metadata] [--no-tensors] [--base-precision P]\n\n"
                   "MODEL is a GGUF file, a llama2.c .bin checkpoint, a .safetensors file with config.json\n"
                   "beside it, or a Hugging Face model folder. Prints the architecture, hyper-parameters,\n"
                   "metadata, the tensor table (stored type and shape), parameter count and memory: the\n"
                   "bytes resident per type when the model is loaded with --base-precision P (stored), planned\n"
                   "from the tensor table without reading the weights: 'resident' leaves out the LM head (a\n"
                   "classifier does not load it), 'read from the file mapping' is what stays in the file's pages\n"
                   "rather than in memory of its own (GGUF q/k matrices are reordered into a copy).\n");
            return 0;
        } else if (!strcmp(argv[i], "--no-metadata")) {
            show_meta = 0;
        } else if (!strcmp(argv[i], "--no-tensors")) {
            show_tensors = 0;
        } else if (!strcmp(argv[i], "--base-precision")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "lsllama inspect: --base-precision needs a value (stored, bf16, q8_0 or f32)\n");
                return 2;
            }
            if (!cli_parse_base_precision("inspect", argv[++i], &lo.base_precision)) return 2;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "lsllama inspect: unexpected argument '%s' (see --help)\n", argv[i]);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        fprintf(stderr, "lsllama inspect: missing MODEL (see --help)\n");
        return 2;
    }
    ll_checkpoint *c;
    ll_error err = {0};
    if (ll_checkpoint_open(&c, path, &err)) {
        fprintf(stderr, "lsllama inspect: %s\n", err.message);
        return 1;
    }
    const ll_config *p = ll_checkpoint_config(c);
    printf("model:        %s\nformat:       %s\narchitecture: %s\n", path, ll_checkpoint_format(c), p->arch);
    printf("hyper-parameters:\n");
    printf("  hidden size %d, intermediate size %d, layers %d\n", p->dim, p->hidden_dim, p->n_layers);
    printf("  attention heads %d, key/value heads %d (GQA group %d), head dim %d\n", p->n_heads, p->n_kv_heads,
           p->n_heads / p->n_kv_heads, p->head_dim);
    printf("  vocabulary %d, context length %d\n", p->vocab_size, p->max_seq_len);
    printf("  rope theta %g", p->rope_theta);
    if (p->rope_scaling == LL_ROPE_LINEAR) printf(", linear scaling x%g", p->rope_factor);
    if (p->rope_scaling == LL_ROPE_LLAMA3)
        printf(", llama3 scaling (factor %g, low %g, high %g, original context %d)", p->rope_factor,
               p->rope_low_freq_factor, p->rope_high_freq_factor, p->rope_original_max_pos);
    printf(", rms eps %g\n", p->rms_eps);
    printf("  embeddings %s, q/k/v bias %s, bos %d, eos %d\n", p->tied_embeddings ? "tied" : "untied",
           p->qkv_bias ? "yes" : "no", p->bos_token_id, p->eos_token_id);
    printf("  activation %s", p->hidden_act_name);
    if (p->query_pre_attn_scalar > 0) printf(", attention scale 1/sqrt(%g)", p->query_pre_attn_scalar);
    printf("\n");
    if (p->sliding_window > 0) {
        int n_sliding = 0;
        char global[256] = "";
        for (int l = 0; l < p->n_layers; l++) {
            if (ll_config_layer_sliding(p, l)) n_sliding++;
            else if (strlen(global) < sizeof global - 8)
                snprintf(global + strlen(global), sizeof global - strlen(global), "%s%d", global[0] ? ", " : "", l);
        }
        printf("  sliding window %d on %d of %d layers", p->sliding_window, n_sliding, p->n_layers);
        if (n_sliding < p->n_layers) printf(" (global: %s)", global);
        if (p->rope_local_theta > 0) printf(", their rope theta %g", p->rope_local_theta);
        printf("\n");
    }
    if (show_meta) {
        printf("metadata:\n");
        ll_checkpoint_visit_metadata(c, print_meta, NULL);
    }
    const size_t n = ll_checkpoint_n_tensors(c);
    double params = 0, emb = 0, stored = 0, head = 0;
    if (show_tensors) printf("tensors (%zu):\n  %-48s %-6s %-18s %s\n", n, "name", "type", "shape", "bytes");
    for (size_t i = 0; i < n; i++) {
        const ll_tensor_info *t = ll_checkpoint_tensor(c, i);
        params += (double)t->n_elems;
        stored += (double)t->nbytes;
        if (!strcmp(t->name, "model.embed_tokens.weight")) emb += (double)t->n_elems;
        if (!strcmp(t->name, "lm_head.weight")) head += (double)t->n_elems;
        if (!show_tensors) continue;
        char shape[8 * 22 + 4] = "[", *q = shape + 1; /* 8 dims of up to 20 digits: never cut */
        for (int d = 0; d < t->ndim; d++)
            q += snprintf(q, shape + sizeof shape - q, d ? ", %lld" : "%lld", (long long)t->shape[d]);
        snprintf(q, shape + sizeof shape - q, "]");
        printf("  %-48s %-6s %-18s %llu%s\n", t->stored_name, t->dtype_name, shape, (unsigned long long)t->nbytes,
               t->dtype < 0 ? "  (type not loadable)" : "");
    }
    char b1[32], b2[32], b3[32];
    human_bytes(stored, b1, sizeof b1);
    human_bytes(params * 4, b2, sizeof b2);
    printf("parameters:   %.0f (%.1f M); without embeddings and LM head %.0f (%.1f M)\n", params, params / 1e6,
           params - emb - head, (params - emb - head) / 1e6);
    ll_checkpoint_close(c);
    /* what loading would keep in memory (the classifier's load: no LM head), planned without reading the weights */
    ll_model *m;
    if (ll_model_plan(&m, path, &lo, &err)) {
        printf("memory:       %s stored; not loadable: %s\n", b1, err.message);
        return 0;
    }
    const char *names[LL_DTYPE_COUNT];
    size_t bytes[LL_DTYPE_COUNT], mapped[LL_DTYPE_COUNT];
    const int k = ll_model_resident(m, names, bytes, mapped, LL_DTYPE_COUNT);
    double total = (double)m->owned_bytes, owned_matrices = 0; /* owned: vectors and copied matrices */
    for (int i = 0; i < k; i++) total += (double)mapped[i], owned_matrices += (double)(bytes[i] - mapped[i]);
    human_bytes(total, b2, sizeof b2);
    human_bytes(params * 4, b3, sizeof b3);
    printf("memory:       %s stored; %s resident when loaded with --base-precision %s (f32 would be %s)\n", b1, b2,
           ll_base_precision_name(lo.base_precision), b3);
    for (int i = 0; i < k; i++) {
        char bb[32], bm[32];
        human_bytes((double)bytes[i], bb, sizeof bb);
        human_bytes((double)mapped[i], bm, sizeof bm);
        printf("  %-6s matrices %s%s%s%s\n", names[i], bb, mapped[i] ? " (" : "", mapped[i] ? bm : "",
               mapped[i] ? " of them read from the file mapping)" : "");
    }
    human_bytes((double)m->owned_bytes - owned_matrices, b3, sizeof b3);
    printf("  F32    vectors  %s (norms, biases, RoPE frequencies)\n", b3);
    ll_model_free(m);
    return 0;
}
