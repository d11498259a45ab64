/*
 * rc_list: an intrusive, circular, doubly linked list with a head node.
 *
 * A struct that can sit on a list embeds an rc_list member (its link); the list itself is
 * one more rc_list (the head), which must be set up with rc_list_init or RC_LIST_HEAD_INIT
 * before use. An empty head points at itself, so inserting and removing never test for the
 * ends. rc_list_entry turns a link back into the struct that holds it.
 *
 * A link that is not on any list is all NULL: a zeroed struct (calloc) is ready to insert,
 * rc_list_remove leaves the link NULL again, and removing an unlinked link does nothing.
 * rc_list_linked tells the two states apart. A link is on at most one list at a time.
 *
 * The list owns nothing: the caller allocates and frees the structs, and must remove a
 * struct from its list before freeing it. Not thread-safe: one owner (the loop thread, in
 * daemons).
 */
#ifndef RAYC_COMMON_RC_LIST_H
#define RAYC_COMMON_RC_LIST_H

#include <stddef.h>

typedef struct rc_list {
    struct rc_list *next, *prev;
} rc_list;

/* Static initializer for a head: `static rc_list waiters = RC_LIST_HEAD_INIT(waiters);`. */
#define RC_LIST_HEAD_INIT(name) {&(name), &(name)}

/* The struct of type `type` whose member `member` is the link at ptr (not NULL). */
#define rc_list_entry(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Like rc_list_entry, but NULL for a NULL link (as rc_list_first and friends return). */
#define rc_list_entry_or_null(ptr, type, member)                                                 \
    ((ptr) ? rc_list_entry((ptr), type, member) : (type *)NULL)

/* Visits every link of head in order, as `n`; the loop must not remove `n`. */
#define RC_LIST_FOREACH(n, head) for ((n) = (head)->next; (n) != (head); (n) = (n)->next)

/* As RC_LIST_FOREACH, but the loop may remove (or free) `n`; `tmp` holds the next link. It
 * must not remove any other link of the same list. */
#define RC_LIST_FOREACH_SAFE(n, tmp, head)                                                       \
    for ((n) = (head)->next, (tmp) = (n)->next; (n) != (head); (n) = (tmp), (tmp) = (n)->next)

static inline void rc_list_init(rc_list *head)
{
    head->next = head;
    head->prev = head;
}

static inline int rc_list_empty(const rc_list *head)
{
    return head->next == head;
}

/* Whether link is on a list now (not for heads). */
static inline int rc_list_linked(const rc_list *link)
{
    return link->next != NULL;
}

/* Links n between the adjacent links prev and next. */
static inline void rc_list__splice_one(rc_list *prev, rc_list *n, rc_list *next)
{
    n->prev = prev;
    n->next = next;
    prev->next = n;
    next->prev = n;
}

static inline void rc_list_insert_head(rc_list *head, rc_list *n)
{
    rc_list__splice_one(head, n, head->next);
}

static inline void rc_list_insert_tail(rc_list *head, rc_list *n)
{
    rc_list__splice_one(head->prev, n, head);
}

/* Links n just before pos, a link on a list (or the head: then n becomes the tail). */
static inline void rc_list_insert_before(rc_list *pos, rc_list *n)
{
    rc_list__splice_one(pos->prev, n, pos);
}

/* Links n just after pos, a link on a list (or the head: then n becomes the first). */
static inline void rc_list_insert_after(rc_list *pos, rc_list *n)
{
    rc_list__splice_one(pos, n, pos->next);
}

/* Takes link off its list and leaves it unlinked; does nothing if it is not on one. */
static inline void rc_list_remove(rc_list *link)
{
    if (!link->next)
        return;
    link->prev->next = link->next;
    link->next->prev = link->prev;
    link->next = link->prev = NULL;
}

/* The first (last) link of head, or NULL if it is empty. */
static inline rc_list *rc_list_first(const rc_list *head)
{
    return head->next == head ? NULL : head->next;
}

static inline rc_list *rc_list_last(const rc_list *head)
{
    return head->prev == head ? NULL : head->prev;
}

/* The link after (before) link on head's list, or NULL at the end. */
static inline rc_list *rc_list_next(const rc_list *head, const rc_list *link)
{
    return link->next == head ? NULL : link->next;
}

static inline rc_list *rc_list_prev(const rc_list *head, const rc_list *link)
{
    return link->prev == head ? NULL : link->prev;
}

/* Moves every link of from, in order, to the tail (rc_list_move_tail) or the head
 * (rc_list_move_head) of to; from is left empty. */
static inline void rc_list_move_tail(rc_list *from, rc_list *to)
{
    if (rc_list_empty(from))
        return;
    rc_list *first = from->next, *last = from->prev;
    first->prev = to->prev;
    to->prev->next = first;
    last->next = to;
    to->prev = last;
    rc_list_init(from);
}

static inline void rc_list_move_head(rc_list *from, rc_list *to)
{
    if (rc_list_empty(from))
        return;
    rc_list *first = from->next, *last = from->prev;
    last->next = to->next;
    to->next->prev = last;
    first->prev = to;
    to->next = first;
    rc_list_init(from);
}

/* Puts n in old's place on its list; old is left unlinked. */
static inline void rc_list_replace(rc_list *old, rc_list *n)
{
    rc_list__splice_one(old->prev, n, old->next);
    old->next = old->prev = NULL;
}

/* The number of links on head's list (walks it). */
static inline size_t rc_list_count(const rc_list *head)
{
    size_t n = 0;
    for (const rc_list *l = head->next; l != head; l = l->next)
        n++;
    return n;
}

#endif
