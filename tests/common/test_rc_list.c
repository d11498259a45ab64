/* rc_list: insert and remove at every position, safe iteration, moving whole lists, and
 * the unlinked state of links, checked by walking both directions. */
#include <stdlib.h>
#include <string.h>

#include "rc_list.h"
#include "unit.h"

typedef struct item {
    int value;
    rc_list link;
    int after; /* keeps link away from both ends of the struct for rc_list_entry */
} item;

/* Whether head's list holds exactly the values in want[0..n), in order, with consistent
 * prev pointers, and first/last/next/prev/count agree. */
static int list_is(const rc_list *head, const int *want, size_t n)
{
    if (rc_list_count(head) != n || (rc_list_empty(head) != (n == 0)))
        return 0;
    size_t i = 0;
    const rc_list *l;
    RC_LIST_FOREACH(l, head)
    {
        if (l->prev->next != l || l->next->prev != l)
            return 0;
        if (rc_list_entry(l, item, link)->value != want[i++])
            return 0;
    }
    /* Backwards through rc_list_last / rc_list_prev. */
    i = n;
    for (const rc_list *b = rc_list_last(head); b; b = rc_list_prev(head, b))
        if (i == 0 || rc_list_entry(b, item, link)->value != want[--i])
            return 0;
    if (i != 0)
        return 0;
    i = 0;
    for (const rc_list *f = rc_list_first(head); f; f = rc_list_next(head, f))
        if (rc_list_entry(f, item, link)->value != want[i++])
            return 0;
    return i == n;
}

static void test_empty_and_unlinked(void)
{
    rc_list head;
    rc_list_init(&head);
    CU_ASSERT_TRUE(rc_list_empty(&head));
    CU_ASSERT_PTR_NULL(rc_list_first(&head));
    CU_ASSERT_PTR_NULL(rc_list_last(&head));
    CU_ASSERT_EQUAL(rc_list_count(&head), 0);

    static rc_list static_head = RC_LIST_HEAD_INIT(static_head);
    CU_ASSERT_TRUE(rc_list_empty(&static_head));

    item *a = calloc(1, sizeof(*a));
    CU_ASSERT_FALSE(rc_list_linked(&a->link));
    rc_list_remove(&a->link); /* an unlinked link: nothing happens */
    CU_ASSERT_FALSE(rc_list_linked(&a->link));
    CU_ASSERT_TRUE(rc_list_empty(&head));

    rc_list_insert_tail(&head, &a->link);
    CU_ASSERT_TRUE(rc_list_linked(&a->link));
    CU_ASSERT_FALSE(rc_list_empty(&head));
    CU_ASSERT_PTR_EQUAL(rc_list_entry(rc_list_first(&head), item, link), a);
    CU_ASSERT_PTR_EQUAL(rc_list_entry_or_null(rc_list_last(&head), item, link), a);
    rc_list_remove(&a->link);
    CU_ASSERT_FALSE(rc_list_linked(&a->link));
    CU_ASSERT_TRUE(rc_list_empty(&head));
    CU_ASSERT_PTR_NULL(rc_list_entry_or_null(rc_list_first(&head), item, link));
    rc_list_remove(&a->link); /* twice: still nothing */
    CU_ASSERT_TRUE(rc_list_empty(&head));
    free(a);
}

static void test_insert_remove_positions(void)
{
    item it[6];
    memset(it, 0, sizeof(it));
    for (int i = 0; i < 6; i++)
        it[i].value = i;
    rc_list head;
    rc_list_init(&head);

    rc_list_insert_tail(&head, &it[2].link);
    rc_list_insert_tail(&head, &it[3].link);
    rc_list_insert_head(&head, &it[1].link);
    rc_list_insert_head(&head, &it[0].link);
    CU_ASSERT_TRUE(list_is(&head, (int[]){0, 1, 2, 3}, 4));
    rc_list_insert_before(&it[2].link, &it[4].link);
    CU_ASSERT_TRUE(list_is(&head, (int[]){0, 1, 4, 2, 3}, 5));
    rc_list_insert_after(&it[3].link, &it[5].link); /* after the tail: the new tail */
    CU_ASSERT_TRUE(list_is(&head, (int[]){0, 1, 4, 2, 3, 5}, 6));

    rc_list_remove(&it[4].link); /* middle */
    CU_ASSERT_TRUE(list_is(&head, (int[]){0, 1, 2, 3, 5}, 5));
    rc_list_remove(&it[0].link); /* head */
    CU_ASSERT_TRUE(list_is(&head, (int[]){1, 2, 3, 5}, 4));
    rc_list_remove(&it[5].link); /* tail */
    CU_ASSERT_TRUE(list_is(&head, (int[]){1, 2, 3}, 3));
    CU_ASSERT_FALSE(rc_list_linked(&it[0].link));
    CU_ASSERT_FALSE(rc_list_linked(&it[4].link));
    CU_ASSERT_FALSE(rc_list_linked(&it[5].link));

    /* Before the head means at the tail, after the head means first. */
    rc_list_insert_before(&head, &it[5].link);
    rc_list_insert_after(&head, &it[0].link);
    CU_ASSERT_TRUE(list_is(&head, (int[]){0, 1, 2, 3, 5}, 5));

    rc_list_replace(&it[2].link, &it[4].link);
    CU_ASSERT_TRUE(list_is(&head, (int[]){0, 1, 4, 3, 5}, 5));
    CU_ASSERT_FALSE(rc_list_linked(&it[2].link));

    for (int i = 0; i < 6; i++)
        rc_list_remove(&it[i].link);
    CU_ASSERT_TRUE(rc_list_empty(&head));
}

/* A FIFO queue: what goes in at the tail comes out at the head in the same order. */
static void test_fifo_order(void)
{
    enum { N = 100 };
    item it[N];
    memset(it, 0, sizeof(it));
    rc_list q;
    rc_list_init(&q);
    for (int i = 0; i < N; i++) {
        it[i].value = i;
        rc_list_insert_tail(&q, &it[i].link);
    }
    for (int i = 0; i < N; i++) {
        item *first = rc_list_entry_or_null(rc_list_first(&q), item, link);
        CU_ASSERT_PTR_NOT_NULL_FATAL(first);
        CU_ASSERT_EQUAL(first->value, i);
        rc_list_remove(&first->link);
    }
    CU_ASSERT_TRUE(rc_list_empty(&q));
}

/* Removing (and freeing) during RC_LIST_FOREACH_SAFE: every link visited exactly once. */
static void test_remove_during_safe_iteration(void)
{
    enum { N = 10 };
    rc_list head;
    rc_list_init(&head);
    for (int i = 0; i < N; i++) {
        item *x = calloc(1, sizeof(*x));
        x->value = i;
        rc_list_insert_tail(&head, &x->link);
    }
    int seen = 0, next_expected = 0;
    rc_list *l, *tmp;
    RC_LIST_FOREACH_SAFE(l, tmp, &head)
    {
        item *x = rc_list_entry(l, item, link);
        CU_ASSERT_EQUAL(x->value, next_expected);
        next_expected++;
        seen++;
        if (x->value % 3 == 0) { /* first, middle ones and the last */
            rc_list_remove(l);
            free(x);
        }
    }
    CU_ASSERT_EQUAL(seen, N);
    CU_ASSERT_TRUE(list_is(&head, (int[]){1, 2, 4, 5, 7, 8}, 6));

    /* Removing every link empties the list. */
    RC_LIST_FOREACH_SAFE(l, tmp, &head)
    {
        rc_list_remove(l);
        free(rc_list_entry(l, item, link));
    }
    CU_ASSERT_TRUE(rc_list_empty(&head));

    /* Safe iteration over an empty list runs no iteration. */
    seen = 0;
    RC_LIST_FOREACH_SAFE(l, tmp, &head)
    seen++;
    CU_ASSERT_EQUAL(seen, 0);
}

static void test_move_all(void)
{
    item it[6];
    memset(it, 0, sizeof(it));
    rc_list a, b;
    rc_list_init(&a);
    rc_list_init(&b);
    for (int i = 0; i < 6; i++) {
        it[i].value = i;
        rc_list_insert_tail(i < 3 ? &a : &b, &it[i].link);
    }
    rc_list_move_tail(&a, &b);
    CU_ASSERT_TRUE(rc_list_empty(&a));
    CU_ASSERT_TRUE(list_is(&b, (int[]){3, 4, 5, 0, 1, 2}, 6));

    rc_list_move_tail(&a, &b); /* from an empty list: nothing changes */
    CU_ASSERT_TRUE(rc_list_empty(&a));
    CU_ASSERT_TRUE(list_is(&b, (int[]){3, 4, 5, 0, 1, 2}, 6));

    rc_list_move_head(&b, &a); /* into an empty list */
    CU_ASSERT_TRUE(rc_list_empty(&b));
    CU_ASSERT_TRUE(list_is(&a, (int[]){3, 4, 5, 0, 1, 2}, 6));

    rc_list_remove(&it[0].link);
    rc_list_remove(&it[1].link);
    rc_list_insert_tail(&b, &it[0].link);
    rc_list_insert_tail(&b, &it[1].link);
    rc_list_move_head(&b, &a); /* in front of what a holds, order kept */
    CU_ASSERT_TRUE(list_is(&a, (int[]){0, 1, 3, 4, 5, 2}, 6));
    CU_ASSERT_TRUE(rc_list_empty(&b));

    rc_list_move_head(&b, &a); /* from an empty list: nothing changes */
    CU_ASSERT_TRUE(list_is(&a, (int[]){0, 1, 3, 4, 5, 2}, 6));

    /* The moved list's links stay linked and removable from their new list. */
    rc_list_remove(&it[3].link);
    CU_ASSERT_TRUE(list_is(&a, (int[]){0, 1, 4, 5, 2}, 5));
}

static const unit_case cases[] = {
    UNIT_CASE(test_empty_and_unlinked),
    UNIT_CASE(test_insert_remove_positions),
    UNIT_CASE(test_fifo_order),
    UNIT_CASE(test_remove_during_safe_iteration),
    UNIT_CASE(test_move_all),
};

int main(void)
{
    return unit_run("rc_list", cases, UNIT_N(cases));
}
