/* SPDX-License-Identifier: MIT */
/*
 * pool/place.c - where workers run: hwloc's view of cores, hardware threads
 * and NUMA nodes, cut down to the CPUs this process may use, turned into a
 * list of CPU sets that workers take round-robin.  hwloc is used only here,
 * when a pool is made; workers are bound at creation with plain
 * pthread_attr_setaffinity_np().
 */
#include <errno.h>
#include <hwloc.h>
#include <hwloc/glibc-sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool_int.h"

bool proa__pool_fault_no_topology;

static int add_slot(struct proa__place *pl, hwloc_topology_t topo,
		    hwloc_const_cpuset_t set, hwloc_const_cpuset_t allowed)
{
	hwloc_bitmap_t both = hwloc_bitmap_alloc();
	cpu_set_t *slots;
	int ret = 0;

	if (!both)
		return -ENOMEM;
	hwloc_bitmap_and(both, set, allowed);
	if (hwloc_bitmap_iszero(both))
		goto out;
	slots = realloc(pl->slots, (pl->nslots + 1) * sizeof(*slots));
	if (!slots) {
		ret = -ENOMEM;
		goto out;
	}
	pl->slots = slots;
	hwloc_cpuset_to_glibc_sched_affinity(topo, both, &slots[pl->nslots],
					     sizeof(cpu_set_t));
	pl->nslots++;
out:
	hwloc_bitmap_free(both);
	return ret;
}

static int add_each(struct proa__place *pl, hwloc_topology_t topo,
		    hwloc_obj_type_t type, hwloc_const_cpuset_t allowed)
{
	int i, n = hwloc_get_nbobjs_by_type(topo, type);
	int ret;

	for (i = 0; i < n; i++) {
		ret = add_slot(
		    pl, topo,
		    hwloc_get_obj_by_type(topo, type, (unsigned)i)->cpuset,
		    allowed);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The NUMA node(s) of the calling thread: those its binding touches if it
 * is bound more narrowly than the process, else the node of the CPU it
 * runs on now. */
static int add_near(struct proa__place *pl, hwloc_topology_t topo,
		    hwloc_const_cpuset_t allowed, unsigned *node_out)
{
	hwloc_bitmap_t mine = hwloc_bitmap_alloc();
	hwloc_bitmap_t want = hwloc_bitmap_alloc();
	hwloc_obj_t node;
	int i, n, cpu, ret = -ENOMEM;

	if (!mine || !want)
		goto out;
	if (hwloc_get_cpubind(topo, mine, HWLOC_CPUBIND_THREAD) < 0 ||
	    hwloc_bitmap_isincluded(allowed, mine)) {
		cpu = sched_getcpu();
		hwloc_bitmap_only(mine, cpu >= 0 ? (unsigned)cpu : 0);
	}
	n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
	*node_out = 0;
	for (i = 0; i < n; i++) {
		node = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE,
					     (unsigned)i);
		if (node->cpuset &&
		    hwloc_bitmap_intersects(node->cpuset, mine)) {
			hwloc_bitmap_or(want, want, node->cpuset);
			*node_out = node->os_index;
		}
	}
	/* No node information, or none matched: the whole machine. */
	if (hwloc_bitmap_iszero(want))
		hwloc_bitmap_copy(want, allowed);
	ret = add_slot(pl, topo, want, allowed);
out:
	hwloc_bitmap_free(mine);
	hwloc_bitmap_free(want);
	return ret;
}

static void unbound(struct proa__place *pl, const char *why)
{
	free(pl->slots);
	pl->slots = NULL;
	pl->nslots = 0;
	pl->bound = false;
	snprintf(pl->note, sizeof(pl->note), "unbound: %s", why);
}

/*
 * hwloc 2.9 writes "[hwloc/linux] failed to find sysfs cpu topology
 * directory, aborting linux discovery." to the application's stderr
 * where /sys is not mounted (containers, chroots), and then finds the
 * topology anyway through its other components (x86 cpuid).  So where
 * /sys has no CPU topology the Linux component is left out before the
 * load: the same topology, no message, and the workers are still placed
 * (binding is ours, through pthread_attr_setaffinity_np, not hwloc's).
 * The paths are the two hwloc's Linux backend looks for.  Not
 * HWLOC_HIDE_ERRORS: a library's setenv() races the application's
 * getenv() in other threads, and hides hwloc's other messages too.  A
 * topology named in the environment (an XML file, a synthetic one,
 * another fs root) is still hwloc's to read.
 */
static bool no_sysfs_topology(void)
{
	/* NOLINTBEGIN(concurrency-mt-unsafe): getenv only, never setenv */
	if (getenv("HWLOC_XMLFILE") || getenv("HWLOC_SYNTHETIC") ||
	    getenv("HWLOC_FSROOT") || getenv("HWLOC_COMPONENTS"))
		return false;
	/* NOLINTEND(concurrency-mt-unsafe) */
	return access("/sys/bus/cpu/devices", R_OK | X_OK) < 0 &&
	       access("/sys/devices/system/cpu", R_OK | X_OK) < 0;
}

int proa__place_init(struct proa__place *pl, enum proa_placement policy)
{
	hwloc_topology_t topo = NULL;
	hwloc_bitmap_t allowed = NULL;
	unsigned node = 0, nnodes;
	int ret = 0;

	memset(pl, 0, sizeof(*pl));
	pl->policy = policy;
	/* The process's CPUs: the main thread's affinity (a loop thread
	 * pinned to one CPU must not narrow the whole pool). */
	if (sched_getaffinity(getpid(), sizeof(pl->allowed), &pl->allowed) < 0)
		return -errno;
	if (policy == PROA_PLACE_NONE) {
		unbound(pl, "as asked");
		return 0;
	}
	if (proa__pool_fault_no_topology) {
		unbound(pl, "hwloc found no topology");
		goto out;
	}
	if (hwloc_topology_init(&topo) < 0) {
		topo = NULL;
		unbound(pl, "hwloc found no topology");
		goto out;
	}
	if (no_sysfs_topology())
		(void)hwloc_topology_set_components(
		    topo, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "linux");
	if (hwloc_topology_load(topo) < 0) {
		unbound(pl, "hwloc found no topology");
		goto out;
	}
	allowed = hwloc_bitmap_alloc();
	if (!allowed) {
		ret = -ENOMEM;
		goto out;
	}
	hwloc_cpuset_from_glibc_sched_affinity(topo, allowed, &pl->allowed,
					       sizeof(pl->allowed));
	nnodes = (unsigned)hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
	switch (policy) {
	case PROA_PLACE_SPREAD:
		ret = add_each(pl, topo, HWLOC_OBJ_CORE, allowed);
		if (ret == 0 && pl->nslots == 0)
			ret = add_each(pl, topo, HWLOC_OBJ_PU, allowed);
		snprintf(pl->note, sizeof(pl->note),
			 "spread over %u cores of %u NUMA node%s", pl->nslots,
			 nnodes, nnodes == 1 ? "" : "s");
		break;
	case PROA_PLACE_PACK:
		ret = add_each(pl, topo, HWLOC_OBJ_PU, allowed);
		snprintf(pl->note, sizeof(pl->note),
			 "packed on %u hardware threads in order", pl->nslots);
		break;
	default:
		ret = add_near(pl, topo, allowed, &node);
		snprintf(pl->note, sizeof(pl->note),
			 "near the creating thread: NUMA node %u of %u (%d "
			 "CPUs)",
			 node, nnodes,
			 pl->nslots ? CPU_COUNT(&pl->slots[0]) : 0);
		break;
	}
	if (ret < 0)
		goto out;
	if (pl->nslots == 0)
		unbound(pl, "hwloc found no usable CPU in this process's set");
	else
		pl->bound = true;
out:
	if (allowed)
		hwloc_bitmap_free(allowed);
	if (topo)
		hwloc_topology_destroy(topo);
	if (ret < 0) {
		free(pl->slots);
		pl->slots = NULL;
	}
	return ret;
}

void proa__place_fini(struct proa__place *pl)
{
	free(pl->slots);
	pl->slots = NULL;
	pl->nslots = 0;
}
