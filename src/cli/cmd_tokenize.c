#include <stdio.h>
#include "cli/commands.h"
int cmd_tokenize(int argc, char **argv) {
    fprintf(stderr, "lsllama tokenize: not implemented yet\n");
    return 1;
}
