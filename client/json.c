/* placeholder: being written */
typedef int parley_placeholder_json_t;
