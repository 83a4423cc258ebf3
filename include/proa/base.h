/* SPDX-License-Identifier: MIT */
/*
 * proa/base.h - definitions every other proa header builds on: the export
 * marker, intrusive list links and their helpers, container_of and the
 * opaque loop type.
 *
 * Nothing here touches the kernel or allocates.  The structures named
 * proa__*_priv are embedded in caller-owned objects so that the library never
 * allocates per operation; their contents belong to the library and callers
 * must not read or write them.
 */
#ifndef PROA_BASE_H
#define PROA_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PROA_API __attribute__((visibility("default")))
#else
#define PROA_API
#endif

/*
 * struct proa_link - an intrusive doubly linked list node.  Lists are
 * circular with a sentinel head, so unlinking needs no reference to the list.
 */
struct proa_link {
	struct proa_link *next;
	struct proa_link *prev;
};

/**
 * proa_list_init() - make @head an empty list (linked to itself).
 * @head: caller-owned sentinel.
 *
 * A node made this way is also a valid "unlinked" node: proa_list_del()
 * on it is harmless.
 *
 * Thread: any; the caller serialises use of one list (no locking).
 */
static inline void proa_list_init(struct proa_link *head)
{
	head->next = head;
	head->prev = head;
}

/**
 * proa_list_empty() - whether the list at @head has no nodes.
 * @head: a sentinel made by proa_list_init().
 *
 * Return: true if empty.
 * Thread: any; the caller serialises use of one list (no locking).
 */
static inline bool proa_list_empty(const struct proa_link *head)
{
	return head->next == head;
}

/**
 * proa_list_add_tail() - link @node in at the tail of the list at @head.
 * @head: a sentinel made by proa_list_init().
 * @node: caller-owned and not on any list; borrowed by the list until
 *        proa_list_del().
 *
 * Thread: any; the caller serialises use of one list (no locking).
 */
static inline void proa_list_add_tail(struct proa_link *head,
				      struct proa_link *node)
{
	node->prev = head->prev;
	node->next = head;
	head->prev->next = node;
	head->prev = node;
}

/**
 * proa_list_del() - unlink @node from its list.
 * @node: on a list, or self-linked.
 *
 * @node is left self-linked, so unlinking it a second time is harmless and
 * proa_list_empty(@node) says it is on no list.
 *
 * Thread: any; the caller serialises use of one list (no locking).
 */
static inline void proa_list_del(struct proa_link *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->next = node;
	node->prev = node;
}

/* Recover the enclosing object from a pointer to one of its members. */
#define proa_container_of(ptr, type, member)                                   \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* The event loop.  Opaque: created by proa_loop_new(), see proa/loop.h. */
struct proa_loop;

/* A plain callback: what call_soon, call_later and the threadsafe queue run. */
typedef void (*proa_callback_fn)(void *arg);

/*
 * struct proa__mpsc_node - private: a node of a loop's cross-thread queue.
 * @run is called on the loop thread when the node is taken off the queue.
 * Plain pointer types (no _Atomic) so that the header also parses as C++;
 * the library accesses @next with __atomic builtins.
 */
struct proa__mpsc_node {
	struct proa__mpsc_node *next;
	void (*run)(struct proa__mpsc_node *node);
};

#ifdef __cplusplus
}
#endif

#endif /* PROA_BASE_H */
