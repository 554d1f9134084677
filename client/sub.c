/* placeholder: being written */
typedef int parley_placeholder_sub_t;
