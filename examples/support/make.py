"""Generate ``questions.jsonl``: customer questions for the Brightkettle support prompt, each labelled.

Every question is answerable from exactly one sentence of ``system.txt``; its
``label`` is that sentence's 1-based index (sentences are the file's lines, one
fact or instruction per line, the way attrib's sentence level splits them) and
``fact`` repeats the sentence's text so the file can be read on its own.
``target`` is the reply a support assistant logged for the question: the fact
in the assistant's words. Audits of logged conversations explain the answer
that was given, so a batch over this file explains these replies (the
embedded model is a small base model, whose own replies rarely answer; a run
without targets measures that instead, see docs/summary.md).

Questions are templates x paraphrases: for each fact, a handful of phrasings,
each optionally given an opening ("Hi,", "Hello there!"), a closing ("Thanks!"),
a lower-case or typo variant, chosen by a seeded random generator, so the file is
reproducible: ``python examples/support/make.py`` rewrites it byte for byte.
Sentence 11 (the answering instruction) governs every answer and labels none.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 16
PER_LABEL = 25

#: 1-based sentence index of system.txt -> ways a customer asks for that fact.
QUESTIONS: dict[int, list[str]] = {
    1: [
        "What do you sell?",
        "What kind of products does your shop sell?",
        "What is this shop about?",
        "Which company am I talking to?",
        "What products can I buy from you?",
        "Do you sell kettles?",
        "Are you a kettle shop?",
        "What sort of things do you have in your store?",
        "Who are you?",
        "What does your company make and sell?",
    ],
    2: [
        "When is the support desk open?",
        "What are your opening hours?",
        "When can I call support?",
        "Is the support desk open on Saturday?",
        "What time does support open in the morning?",
        "Until what time is your support desk open?",
        "Which days is support available?",
        "Are you open on weekends?",
        "What hours is customer service open?",
        "When does your support team work?",
    ],
    3: [
        "How long do I have to return a kettle?",
        "Can I return a product I don't like?",
        "What is your refund policy?",
        "How many days do I have to send something back?",
        "Can I get my money back?",
        "Do you give full refunds on returns?",
        "What is the return window?",
        "I changed my mind about my teapot, can I return it?",
        "Is it too late to return an item I bought a month ago?",
        "How do refunds work?",
    ],
    4: [
        "How long does shipping take?",
        "When will my order arrive?",
        "How many days is delivery?",
        "What is the standard delivery time?",
        "How fast do you ship?",
        "How long until my kettle gets here?",
        "How long is standard shipping?",
        "What is the usual shipping time?",
        "How soon will I get my package?",
        "How many business days does delivery take?",
    ],
    5: [
        "What email address can I write to?",
        "How can I contact a real person?",
        "What is your support email?",
        "How do I reach a human?",
        "Where do I send an email about my order?",
        "Can I talk to a person?",
        "What is your contact address?",
        "How can I get in touch with your team?",
        "Is there an email for help?",
        "Who do I write to with a complaint?",
    ],
    6: [
        "How long is the warranty on a kettle?",
        "Does my kettle have a warranty?",
        "What warranty do your kettles come with?",
        "How many years of warranty do I get?",
        "Is there a guarantee on the kettles?",
        "My kettle broke after a year, is it still under warranty?",
        "How long are kettles covered?",
        "What is the warranty period?",
        "Do kettles come with a guarantee?",
        "How long does the kettle warranty last?",
    ],
    7: [
        "Is there a discount code for new customers?",
        "Do you have a discount for first-time buyers?",
        "Is there a coupon code?",
        "Can I get a discount on my first order?",
        "What is the promo code for new customers?",
        "Do you offer any discounts?",
        "How much off do new customers get?",
        "Is there a welcome discount?",
        "What code do I use for my first purchase?",
        "Do first orders get a discount?",
    ],
    8: [
        "Where can I buy a replacement lid?",
        "Do you sell spare filters?",
        "I lost the lid of my kettle, where can I get a new one?",
        "Where do I find replacement filters?",
        "Can I buy spare parts for my kettle?",
        "Where are the spare parts sold?",
        "My kettle filter is broken, can I buy a new filter?",
        "Do you sell lids separately?",
        "Where can I order a new filter?",
        "Is there a page for spare parts?",
    ],
    9: [
        "Do you offer free shipping?",
        "Is shipping free?",
        "How much do I have to spend for free delivery?",
        "When is delivery free?",
        "Do I have to pay for shipping?",
        "What is the minimum order for free shipping?",
        "Is there free shipping on big orders?",
        "How can I get free shipping?",
        "Do you charge for delivery?",
        "Above what amount is shipping free?",
    ],
    10: [
        "Which countries do you ship to?",
        "Do you ship to France?",
        "Can you deliver to Austria?",
        "Do you deliver to the Netherlands?",
        "Where do you ship?",
        "Do you ship to Germany?",
        "Which countries can I order from?",
        "Can I order from outside Germany?",
        "What countries do you deliver to?",
        "Do you ship abroad?",
    ],
}

#: 1-based sentence index -> replies a support assistant logged for such a question: the
#: fact in the assistant's own words (what a deployed, chat-tuned assistant would say).
ANSWERS: dict[int, list[str]] = {
    1: [
        "We sell electric kettles and teapots online.",
        "Brightkettle is an online shop for electric kettles and teapots.",
        "You are talking to Brightkettle's support: we sell kettles and teapots.",
    ],
    2: [
        "Our support desk is open Monday to Friday, 8 am to 6 pm.",
        "Support is available from 8 am to 6 pm, Monday to Friday.",
        "You can reach the desk Monday to Friday between 8 am and 6 pm.",
    ],
    3: [
        "You can return any product within 45 days for a full refund.",
        "Returns are accepted for 45 days, with a full refund.",
        "You have 45 days to send it back and get all your money back.",
    ],
    4: [
        "Standard shipping takes 3 to 5 business days.",
        "Your order arrives in 3 to 5 business days.",
        "Delivery takes 3 to 5 business days with standard shipping.",
    ],
    5: [
        "Please write to help@brightkettle.example to reach a person.",
        "You can contact a person at help@brightkettle.example.",
        "Send an email to help@brightkettle.example and a person will answer.",
    ],
    6: [
        "Every kettle has a 2-year warranty.",
        "Your kettle is covered by a 2-year warranty.",
        "The warranty on our kettles lasts 2 years.",
    ],
    7: [
        "As a first-time customer you get 15% off with the code KETTLE15.",
        "Use the code KETTLE15 for 15% off your first order.",
        "New customers save 15% with KETTLE15.",
    ],
    8: [
        "Replacement lids and filters are on our Spare Parts page.",
        "You can buy spare lids and filters on the Spare Parts page.",
        "Lids and filters are sold on our Spare Parts page.",
    ],
    9: [
        "Orders over 60 euros ship for free.",
        "Shipping is free for orders above 60 euros.",
        "Spend more than 60 euros and shipping is free.",
    ],
    10: [
        "We ship to Germany, France, Austria and the Netherlands.",
        "We deliver to Germany, France, Austria and the Netherlands.",
        "Our shipping countries are Germany, France, Austria and the Netherlands.",
    ],
}

OPENINGS = ["", "", "", "Hi, ", "Hello! ", "Hey, ", "Good morning, ", "Hello there, ", "Quick question: "]
CLOSINGS = ["", "", "", " Thanks!", " Thank you.", " Thanks a lot.", " Cheers."]


def _typo(text: str, rng: random.Random) -> str:
    """Swap two adjacent letters inside one word longer than four letters (a common typing slip)."""
    words = text.split(" ")
    long = [i for i, w in enumerate(words) if len(w) > 4 and w.isalpha()]
    if not long:
        return text
    i = rng.choice(long)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def _variant(base: str, rng: random.Random) -> str:
    """One way of sending ``base``: an opening and closing, maybe lower case, maybe a typo."""
    opening = rng.choice(OPENINGS)
    text = base if not opening else base[0].lower() + base[1:]
    if rng.random() < 0.2:
        text = _typo(text, rng)
    text = opening + text + rng.choice(CLOSINGS)
    if rng.random() < 0.2:
        text = text.lower().rstrip("?.!") + ("?" if rng.random() < 0.5 else "")
    return text


def records(seed: int = SEED, per_label: int = PER_LABEL) -> list[dict[str, object]]:
    """The questions, ``per_label`` per labelled sentence, distinct, in a seeded shuffled order."""
    facts = (HERE / "system.txt").read_text(encoding="utf-8").splitlines()
    rng = random.Random(seed)
    out: list[dict[str, object]] = []
    for label, bases in QUESTIONS.items():
        seen: set[str] = set()
        texts = list(bases)  # every phrasing once as written
        while len(texts) < per_label:
            candidate = _variant(rng.choice(bases), rng)
            if candidate not in seen and candidate not in bases:
                seen.add(candidate)
                texts.append(candidate)
        out.extend({"prompt": t, "label": label, "fact": facts[label - 1]} for t in texts)
    rng.shuffle(out)
    replies = random.Random(seed + 1)  # its own generator: the questions stay as they were
    return [
        {"id": f"q{n:03d}", "prompt": r["prompt"], "target": replies.choice(ANSWERS[int(str(r["label"]))]), **r}
        for n, r in enumerate(out, 1)
    ]


def main() -> None:
    lines = [json.dumps(r, ensure_ascii=False) for r in records()]
    (HERE / "questions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} questions to {HERE / 'questions.jsonl'}")


if __name__ == "__main__":
    main()
