/* placeholder: being written */
typedef int parley_placeholder_main_t;
int main(void){return 0;}
