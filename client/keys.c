/* placeholder: being written */
typedef int parley_placeholder_keys_t;
