/* placeholder: being written */
typedef int parley_placeholder_cmd_pub_t;
