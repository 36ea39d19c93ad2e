/* The tool's start-up guard: before main (a constructor, compiled for the x86-64 baseline like ll_cpu_check), stop
 * with the library's message when this CPU lacks an instruction set the build was compiled to use, instead of
 * dying of SIGILL at some later point. */
#include <stdio.h>
#include <stdlib.h>

#include "lsllama.h"

__attribute__((constructor)) static void cpu_guard(void) {
    ll_error err = {0};
    if (ll_cpu_check(&err)) {
        fprintf(stderr, "lsllama: %s\n", err.message);
        exit(1);
    }
}
