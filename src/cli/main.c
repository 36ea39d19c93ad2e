/* lsllama: command-line entry point; dispatches to src/cli/cmd_*.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"inspect", cmd_inspect, "MODEL                 architecture, hyper-parameters, tensor table"},
    {"embed", cmd_embed, "MODEL [options]       pooled hidden states for token-id lines on stdin"},
    {"generate", cmd_generate, "MODEL [options]       greedy decoding (models with an LM head)"},
    {"tokenize", cmd_tokenize, "MODEL_OR_TOKENIZER    text lines in, token ids out"},
    {"train", cmd_train, "MODEL --train F --out D  LoRA (or full) training of a sequence (LS-LLaMA) or token (NER) classifier"},
    {"eval", cmd_eval, "MODEL --adapter D --data F  accuracy, macro-F1, per-class table, confusion"},
    {"predict", cmd_predict, "MODEL --adapter D     label and probabilities per text line (JSONL)"},
    {"serve", cmd_serve, "MODEL [--adapter D] [options]  HTTP service: TEI, vLLM and OpenAI routes, /ner"},
    {"merge", cmd_merge, "MODEL --adapter D --out D  merged Hugging Face model for adapter-free inference"},
    {"plot", cmd_plot, "LOG_OR_DIR... --y KEY --out F.svg  SVG line plot of training logs (loss, dev metric)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: lsllama COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'lsllama COMMAND --help' describes a command's options; 'lsllama --version' prints the version.\n");
}

int main(int argc, char **argv) {
    /* Past a file size limit (ulimit -f) a write fails with EFBIG and is reported like any other failed write,
     * instead of the process dying of SIGXFSZ without a word. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("lsllama %s\n", ll_version());
        return cli_output_finish("version", stdout, "standard output", 1) ? 0 : 1;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return cli_output_finish("help", stdout, "standard output", 1) ? 0 : 1;
    }
    /* Under mpirun only train works together; any other command would just run W times over. */
    const char *world = getenv("OMPI_COMM_WORLD_SIZE") ? getenv("OMPI_COMM_WORLD_SIZE") : getenv("PMI_SIZE");
    if (world && atoi(world) > 1 && strcmp(argv[1], "train") != 0) {
        const char *rank = getenv("OMPI_COMM_WORLD_RANK") ? getenv("OMPI_COMM_WORLD_RANK") : getenv("PMI_RANK");
        if (!rank || atoi(rank) == 0)
            fprintf(stderr, "lsllama %s: started by mpirun as one of %d ranks: only train runs data-parallel; "
                    "run %s without mpirun\n", argv[1], atoi(world), argv[1]);
        return 2;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            int rc = commands[i].run(argc - 1, argv + 1);
            /* every command's output is checked here, once: a full disk is an error, not exit 0 */
            if (!cli_output_finish(commands[i].name, stdout, "standard output", 1) && rc == 0) rc = 1;
            return rc;
        }
    fprintf(stderr, "lsllama: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
