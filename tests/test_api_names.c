/* The public name lists (include/lsllama_train.h): every enum value's name
 * parses back to it, names outside the list and out-of-range values are
 * refused, the CLI's spellings are the ones listed, and LoRA target lists
 * map to the module bits (q,k,v,o,gate,up,down) or fail naming the item. */
#include <string.h>

#include "lsllama_train.h"
#include "test_util.h"

/* name(v) parses back to v for v in [0, n); name(n) is NULL. */
#define ROUND_TRIP(type, parse, name, n)                                 \
    do {                                                                 \
        for (int v = 0; v < (n); v++) {                                  \
            type back = (type)-1;                                        \
            CHECK_MSG(name((type)v) && parse(name((type)v), &back) == LL_OK && (int)back == v, "%s %d", #name, v); \
        }                                                                \
        CHECK(name((type)(n)) == NULL);                                  \
        type keep = (type)0;                                             \
        CHECK(parse("no-such-name", &keep) == LL_ERR_ARG && keep == (type)0); \
        CHECK(parse("", &keep) == LL_ERR_ARG);                           \
    } while (0)

int main(void) {
    ROUND_TRIP(ll_task, ll_task_parse, ll_task_name, 2);
    ROUND_TRIP(ll_mask, ll_mask_parse, ll_mask_name, 2);
    ROUND_TRIP(ll_pool, ll_pool_parse, ll_pool_name, 4);
    ROUND_TRIP(ll_metric, ll_metric_parse, ll_metric_name, 4);
    ROUND_TRIP(ll_data_format, ll_data_format_parse, ll_data_format_name, 6);
    ROUND_TRIP(ll_merge_dtype, ll_merge_dtype_parse, ll_merge_dtype_name, 3);

    /* the spellings the CLI documents and the adapter files hold */
    ll_pool pool;
    CHECK(ll_pool_parse("mean", &pool) == LL_OK && pool == LL_POOL_MEAN);
    CHECK(!strcmp(ll_pool_name(LL_POOL_FIRST), "first"));
    CHECK(ll_pool_parse("Mean", &pool) == LL_ERR_ARG); /* exact, as label_map.json is read */
    ll_metric metric;
    CHECK(ll_metric_parse("f1", &metric) == LL_OK && metric == LL_METRIC_ENTITY_F1);
    CHECK(!strcmp(ll_metric_title(LL_METRIC_MACRO_F1), "macro-F1"));
    ll_data_format format;
    CHECK(ll_data_format_parse("conll", &format) == LL_OK && format == LL_DATA_CONLL);
    ll_task task;
    CHECK(ll_task_parse("token", &task) == LL_OK && task == LL_TASK_TOKEN);

    /* LoRA targets: bit i per module in q,k,v,o,gate,up,down order */
    ll_error err = {0};
    unsigned mask = 0;
    CHECK(ll_lora_targets_parse("q,v", &mask, &err) == LL_OK && mask == (1u << 0 | 1u << 2));
    CHECK(ll_lora_targets_parse("q_proj,down", &mask, &err) == LL_OK && mask == (1u << 0 | 1u << 6));
    CHECK(ll_lora_targets_parse("all-linear", &mask, &err) == LL_OK && mask == 0x7f);
    CHECK(ll_lora_targets_parse("q,qq", &mask, &err) == LL_ERR_ARG && strstr(err.message, "unknown module 'qq'"));
    CHECK(ll_lora_targets_parse("q,,v", &mask, &err) == LL_ERR_ARG && strstr(err.message, "empty module name in 'q,,v'"));
    CHECK(ll_lora_targets_parse("", &mask, &err) == LL_ERR_ARG);
    return test_summary("test_api_names");
}
