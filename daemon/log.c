/* placeholder: being written */
typedef int parley_placeholder_log_t;
