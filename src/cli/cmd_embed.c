#include <stdio.h>
#include "cli/commands.h"
int cmd_embed(int argc, char **argv) {
    fprintf(stderr, "lsllama embed: not implemented yet\n");
    return 1;
}
