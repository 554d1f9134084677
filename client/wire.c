/* placeholder: being written */
typedef int parley_placeholder_wire_t;
