'use strict';

/** First-in first-out queue with O(1) shift that releases what it has handed out. */
class Fifo {
  constructor() {
    this._items = [];
    this._head = 0;
  }

  get length() {
    return this._items.length - this._head;
  }

  push(item) {
    this._items.push(item);
  }

  shift() {
    if (this._head >= this._items.length) return undefined;
    const item = this._items[this._head];
    this._items[this._head++] = undefined;
    if (this._head === this._items.length) {
      this._items = [];
      this._head = 0;
    } else if (this._head >= 1024 && this._head * 2 >= this._items.length) {
      this._items = this._items.slice(this._head);
      this._head = 0;
    }
    return item;
  }

  /** Remove and return every item, oldest first. */
  drain() {
    const items = this._items.slice(this._head);
    this._items = [];
    this._head = 0;
    return items;
  }
}

module.exports = { Fifo };
