/* placeholder: being written */
typedef int parley_placeholder_index_t;
