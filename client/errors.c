/* placeholder: being written */
typedef int parley_placeholder_errors_t;
