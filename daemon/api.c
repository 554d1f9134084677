/* placeholder: being written */
typedef int parley_placeholder_api_t;
