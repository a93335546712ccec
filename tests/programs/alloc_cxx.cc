/*
 * alloc_cxx - C++ allocations with known figures: new/delete, new[]/
 * delete[] (with the array cookie of a type that has a destructor), a
 * std::vector growing to 100 ints, and an exception thrown and caught
 * (it must still unwind under the recorder). No iostream: output goes
 * through write(2).
 *
 * What the program itself allocates (requested bytes):
 *   new int                      4      delete
 *   new int[10]                  40     delete[]
 *   new Obj[3] (8 bytes + cookie) 32    delete[]
 *   vector<int> push_back x100   capacities 1,2,4,...,128: 8 operator new
 *                                of 4+8+...+512 = 1020 bytes, 8 deletes
 *   throw 42                     one malloc by __cxa_allocate_exception
 *                                (4 bytes + libstdc++'s 128-byte header
 *                                on x86-64 = 132), freed after the catch
 *   new char[3000] kept live     3000, deleted at the end
 * = 13 allocations, 13 frees, 4228 bytes. The peak comes when the vector
 * moves from 256 to 512 bytes (both live) next to the 3000-byte block:
 * 3768 bytes.
 * libstdc++ itself mallocs its emergency exception pool (72,704 bytes in
 * GCC 12) before main and frees it only under valgrind (__gnu_cxx::__freeres):
 * one more allocation, live at the end. Totals: 14 allocations, 13 frees,
 * 76,932 bytes allocated, peak 76,472, 72,704 bytes in 1 block live at the
 * end. memcheck --run-cxx-freeres=no: 14 allocs, 13 frees, 76,932 bytes.
 */
#include <cstring>
#include <new>
#include <vector>
#include <unistd.h>

struct Obj {
	long v;
	Obj() : v(1) {}
	~Obj() { v = 0; }
};

static void say(const char *s)
{
	if (write(1, s, strlen(s)) < 0)
		_exit(3);
}

static int thrower(int x)
{
	if (x > 0)
		throw 42;
	return x;
}

int main()
{
	int *one = new int(5);
	delete one;

	int *arr = new int[10];
	arr[9] = 1;
	delete[] arr;

	Obj *objs = new Obj[3];
	delete[] objs;

	char *keep = new char[3000];
	keep[0] = 1;
	{
		std::vector<int> v;
		for (int i = 0; i < 100; i++)
			v.push_back(i);
		try {
			thrower(v[99]);
			say("alloc_cxx: no exception\n");
			return 1;
		} catch (int e) {
			if (e != 42)
				return 1;
		}
	}
	delete[] keep;
	say("alloc_cxx: caught 42\n");
	return 0;
}
