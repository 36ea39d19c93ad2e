#include <stdio.h>
#include "cli/commands.h"
int cmd_inspect(int argc, char **argv) {
    fprintf(stderr, "lsllama inspect: not implemented yet\n");
    return 1;
}
