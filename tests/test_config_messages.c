/* Hugging Face config.json checks name the key(s), the file and the values
 * (issue 10): a hidden_size not divisible by num_attention_heads used to say
 * "head dimension 7 must be even" or fail later on a tensor shape. Each case
 * writes the valid tiny model's safetensors with one config.json key changed
 * and expects LL_ERR_CONFIG with a message naming config.json, the key(s) in
 * quotes and the value. */
#include <cjson/cJSON.h>
#include <sys/stat.h>

#include "fixture_writer.h"
#include "lsllama.h"
#include "test_util.h"

static char tmp_root[] = "/tmp/ll_test_config_messages_XXXXXX";
static fw_model M;
static fw_buf st; /* model.safetensors bytes */
static int case_no;

/* A folder with model.safetensors and config.json = the valid config with
 * key set to the JSON value json (NULL: removed); returns the folder. */
static const char *folder_with(const char *key, const char *json, const char *key2, const char *json2) {
    static char dir[600];
    snprintf(dir, sizeof dir, "%s/c%d", tmp_root, case_no++);
    REQUIRE(mkdir(dir, 0700) == 0);
    fw_buf cfg = {0};
    fw_hf_config(&M, "llama", NULL, &cfg);
    cJSON *j = cJSON_Parse((const char *)cfg.p);
    REQUIRE(j);
    const char *keys[2] = {key, key2}, *vals[2] = {json, json2};
    for (int i = 0; i < 2; i++) {
        if (!keys[i]) continue;
        cJSON_DeleteItemFromObjectCaseSensitive(j, keys[i]);
        if (vals[i]) {
            cJSON *v = cJSON_Parse(vals[i]);
            REQUIRE(v);
            cJSON_AddItemToObject(j, keys[i], v);
        }
    }
    char *text = cJSON_Print(j);
    char p[700];
    snprintf(p, sizeof p, "%s/config.json", dir);
    REQUIRE(fw_write_text(p, text));
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    REQUIRE(fw_write_file(p, st.p, st.n));
    free(text);
    cJSON_Delete(j);
    fw_free(&cfg);
    return dir;
}

static void expect(const char *label, const char *dir, const char *n1, const char *n2, const char *n3) {
    ll_model *m = NULL;
    ll_error err = {0};
    const int rc = ll_model_load(&m, dir, NULL, &err);
    char file[700];
    snprintf(file, sizeof file, "%s/config.json", dir);
    const int ok = rc == LL_ERR_CONFIG && strstr(err.message, file) && (!n1 || strstr(err.message, n1)) &&
                   (!n2 || strstr(err.message, n2)) && (!n3 || strstr(err.message, n3));
    CHECK_MSG(ok, "%s: rc %d, message '%s', want config.json, '%s', '%s', '%s'", label, rc, rc ? err.message : "",
              n1 ? n1 : "", n2 ? n2 : "", n3 ? n3 : "");
    printf("%-36s -> %s\n", label, rc ? strstr(err.message, "config.json") : "(loaded)");
    ll_model_free(m);
}

int main(void) {
    REQUIRE(mkdtemp(tmp_root));
    fw_model_init(&M, 8, 12, 2, 2, 1, 16);
    fw_st s;
    fw_st_from_model(&s, &M);
    fw_st_serialize(&s, &st);
    /* the valid model loads */
    {
        ll_model *m = NULL;
        ll_error err = {0};
        CHECK_MSG(ll_model_load(&m, folder_with(NULL, NULL, NULL, NULL), NULL, &err) == 0, "valid: %s", err.message);
        ll_model_free(m);
    }
    expect("hidden_size 14 / 2 heads: odd head", folder_with("hidden_size", "14", NULL, NULL), "'hidden_size'",
           "'num_attention_heads'", "14 / 2 = 7");
    expect("hidden_size 8, 3 heads", folder_with("num_attention_heads", "3", NULL, NULL),
           "'num_attention_heads' = 3", "'hidden_size' = 8", NULL);
    expect("4 heads, 3 key/value heads", folder_with("num_attention_heads", "4", "num_key_value_heads", "3"),
           "'num_key_value_heads' = 3", "'num_attention_heads' = 4", "divide");
    expect("more key/value heads than heads", folder_with("num_key_value_heads", "4", NULL, NULL),
           "'num_key_value_heads' = 4", "'num_attention_heads'", NULL);
    expect("key/value heads 0", folder_with("num_key_value_heads", "0", NULL, NULL), "'num_key_value_heads' = 0",
           NULL, NULL);
    expect("head_dim 5", folder_with("head_dim", "5", NULL, NULL), "'head_dim' = 5", "even", NULL);
    expect("head_dim 0", folder_with("head_dim", "0", NULL, NULL), "'head_dim' = 0", NULL, NULL);
    expect("hidden_size 0", folder_with("hidden_size", "0", NULL, NULL), "'hidden_size' = 0", NULL, NULL);
    expect("hidden_size -8", folder_with("hidden_size", "-8", NULL, NULL), "'hidden_size' = -8", NULL, NULL);
    expect("intermediate_size 0", folder_with("intermediate_size", "0", NULL, NULL), "'intermediate_size' = 0", NULL,
           NULL);
    expect("num_hidden_layers 0", folder_with("num_hidden_layers", "0", NULL, NULL), "'num_hidden_layers' = 0", NULL,
           NULL);
    expect("num_attention_heads 0", folder_with("num_attention_heads", "0", NULL, NULL), "'num_attention_heads' = 0",
           NULL, NULL);
    expect("vocab_size 0", folder_with("vocab_size", "0", NULL, NULL), "'vocab_size' = 0", NULL, NULL);
    expect("max_position_embeddings 0", folder_with("max_position_embeddings", "0", NULL, NULL),
           "'max_position_embeddings' = 0", NULL, NULL);
    expect("rms_norm_eps 0", folder_with("rms_norm_eps", "0", NULL, NULL), "'rms_norm_eps' = 0", NULL, NULL);
    expect("rms_norm_eps -1e-5", folder_with("rms_norm_eps", "-1e-5", NULL, NULL), "'rms_norm_eps' = -1e-05", NULL,
           NULL);
    expect("rope_theta 0", folder_with("rope_theta", "0", NULL, NULL), "'rope_theta' = 0", NULL, NULL);
    expect("rope_theta -10000", folder_with("rope_theta", "-10000", NULL, NULL), "'rope_theta' = -10000", NULL, NULL);
    expect("rope_parameters.rope_theta 0",
           folder_with("rope_theta", NULL, "rope_parameters", "{\"rope_type\": \"default\", \"rope_theta\": 0}"),
           "'rope_parameters.rope_theta' = 0", NULL, NULL);
    expect("linear rope factor 0", folder_with("rope_scaling", "{\"rope_type\": \"linear\", \"factor\": 0}", NULL, NULL),
           "'rope_scaling.factor' = 0", NULL, NULL);
    expect("llama3 rope low > high",
           folder_with("rope_scaling",
                       "{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 4, \"high_freq_factor\": 1, "
                       "\"original_max_position_embeddings\": 64}",
                       NULL, NULL),
           "'rope_scaling.low_freq_factor' = 4", "'high_freq_factor' = 1", NULL);
    expect("llama3 rope original max 0",
           folder_with("rope_scaling",
                       "{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1, \"high_freq_factor\": 4, "
                       "\"original_max_position_embeddings\": 0}",
                       NULL, NULL),
           "'rope_scaling.original_max_position_embeddings' = 0", NULL, NULL);
    fw_free(&st);
    fw_st_free(&s);
    fw_model_free(&M);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    (void)system(cmd);
    return test_summary("test_config_messages");
}
