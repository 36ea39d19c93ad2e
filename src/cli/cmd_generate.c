#include <stdio.h>
#include "cli/commands.h"
int cmd_generate(int argc, char **argv) {
    fprintf(stderr, "lsllama generate: not implemented yet\n");
    return 1;
}
