/* placeholder: being written */
typedef int parley_placeholder_store_t;
