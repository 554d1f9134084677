/* placeholder: being written */
typedef int parley_placeholder_config_t;
