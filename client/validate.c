/* placeholder: being written */
typedef int parley_placeholder_validate_t;
