/* placeholder: being written */
typedef int parley_placeholder_common_t;
