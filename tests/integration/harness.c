/* placeholder: being written */
typedef int parley_placeholder_harness_t;
