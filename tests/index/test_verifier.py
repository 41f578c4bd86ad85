"""The verifier's rules, on sentences written for these tests (not from the evaluation data)."""

import pytest

from blendcache.index.verifier import REASONS, Verifier, analyse, stem


@pytest.fixture
def verifier(embedder):
    return Verifier(vocabulary=embedder.vocabulary)


def check(verifier, embedder, query, cached):
    a, b = embedder.embed([query, cached])
    return verifier.verify(query, cached, similarity=float(a @ b))


REJECTED = [
    # negation: negators, contractions, negative prefixes, antonyms
    ("negation", "Does the museum charge for entry?", "Does the museum not charge for entry?"),
    ("negation", "Can I park here overnight?", "Can't I park here overnight?"),
    ("negation", "Is this jacket waterproof?", "Is this jacket never waterproof?"),
    ("negation", "Is the mushroom edible?", "Is the mushroom inedible?"),
    ("negation", "How do I connect my headphones?", "How do I disconnect my headphones?"),
    ("negation", "How do I import my calendar?", "How do I export my calendar?"),
    ("negation", "Is the swimming pool open today?", "Is the swimming pool closed today?"),
    ("negation", "What is the highest score possible?", "What is the lowest score possible?"),
    ("negation", "Can I travel with a pet?", "Can I travel without a pet?"),
    # numbers and dates: digits, number words, times, weekdays, months, years
    ("number_date", "Is a 3-day pass valid on trams?", "Is a 7-day pass valid on trams?"),
    ("number_date", "Can I book for four people?", "Can I book for six people?"),
    ("number_date", "Does the bus run at 6am?", "Does the bus run at 6pm?"),
    ("number_date", "Is the library open on Tuesday?", "Is the library open on Thursday?"),
    ("number_date", "What were the sales in April?", "What were the sales in October?"),
    ("number_date", "Who won the election in 1998?", "Who won the election in 2002?"),
    ("number_date", "Is the museum open tomorrow?", "Is the museum open today?"),
    # entities: proper nouns, acronyms, quoted titles, swapped order
    ("entity", "How far is Lisbon from Porto?", "How far is Lisbon from Faro?"),
    ("entity", "Does the Nikon take SD cards?", "Does the Canon take SD cards?"),
    ("entity", "How do I sync files with Dropbox?", "How do I sync files with OneDrive?"),
    ("entity", "What is the VAT rate in Spain?", "What is the VAT rate in Italy?"),
    ("entity", 'Who sang "Blue Moon" first?', 'Who sang "Red Sky" first?'),
    ("entity", "How do I move contacts from Android to iOS?",
     "How do I move contacts from iOS to Android?"),
    ("entity", "How do I move money from savings to checking?",
     "How do I move money from checking to savings?"),
    # scope: quantifiers and qualifiers, relations
    ("scope", "Do members get free parking?", "Do all members get free parking?"),
    ("scope", "Which rooms have a balcony?", "Which rooms only have a balcony?"),
    ("scope", "Can I get a refund within the trial?", "Can I get a refund after the trial?"),
    ("scope", "Do some trains stop at the airport?", "Do most trains stop at the airport?"),
    # content: a one-word edit the embedding does not vouch for
    ("content", "How much does a kitchen refit cost?", "How much does a bathroom refit cost?"),
    ("content", "What shampoo is best for dogs?", "What shampoo is best for cats?"),
    ("content", "Where can I recycle glass bottles?", "Where can I recycle plastic bottles?"),
    # negation: opposite ends of one scale, though no listed antonym pair
    ("negation", "How do I make the font smaller?", "How do I increase the font size?"),
    ("negation", "How can I boost my spending limit?", "How can I cut my spending limit?"),
    ("negation", "Which cafes got an excellent hygiene rating?",
     "Which cafes got a poor hygiene rating?"),
    # content: members of one closed class (colours, meals, degree levels, periods, transport,
    # materials, home/abroad)
    ("content", "What does the green light on the router mean?",
     "What does the orange light on the router mean?"),
    ("content", "Is lunch included in the room rate?", "Is dinner included in the room rate?"),
    ("content", "What are the fees for undergraduate courses?",
     "What are the fees for postgraduate courses?"),
    ("content", "Is the monthly fee refundable?", "Is the yearly fee refundable?"),
    ("content", "Can I take my bike on the train?", "Can I take my bike on the bus?"),
    ("content", "Does my phone plan work abroad?", "Does my phone plan work at home?"),
    ("content", "Are the cups made of paper?", "Are the cups made of glass?"),
    # scope: a noun restricted on one side only (a modifier, a hyphenated prefix)
    ("scope", "How do I renew my licence?", "How do I renew my provisional licence?"),
    ("scope", "How do I close my joint account?", "How do I close my account?"),
    ("scope", "Is there a pre-season discount?", "Is there a season discount?"),
    ("scope", "Is my ex-wife entitled to the pension?", "Is my wife entitled to the pension?"),
    # content: one noun, two different modifiers
    ("content", "Where do I find the serial number on my router?",
     "Where do I find the model number on my router?"),
    ("content", "How do I reset the admin password?", "How do I reset the wifi password?"),
    # entity: names written in camel case
    ("entity", "Can I sync my notes with iCloud?", "Can I sync my notes?"),
]


@pytest.mark.parametrize("reason,query,cached", REJECTED)
def test_rejects_with_reason(verifier, embedder, reason, query, cached):
    verdict = check(verifier, embedder, query, cached)
    assert (verdict.accepted, verdict.reason) == (False, reason), verdict.detail
    assert verdict.detail


ACCEPTED = [
    ("How do I reset my router?", "How can I reset my router?"),
    ("How do I reset my router?", "how do i reset my router"),
    ("What time does the gym open on Saturdays?", "What time does the gym open on Saturday?"),
    ("Where can I find my recipt?", "Where can I find my receipt?"),
    ("Book a table for two at 8pm", "Book a table for 2 at 8 pm"),
    ("Do you accept Visa cards?", "DO YOU ACCEPT VISA CARDS?"),
    ("Is parking free for Blue Badge holders?", "Is parking free for blue badge holders, please?"),
    ("How do I turn on two-factor authentication?", "How do I enable 2FA?"),
    ("How do I change my delivery address?", "How do I update my delivery address?"),
    ("Hi, how do I cancel my gym membership?", "How do I cancel my gym membership?"),
    ("Can I pay for my order in USD?", "Can I pay for my order in dollars?"),
    # idioms that restrict nothing: "all my", "on my own"; weekday ranges; misspelt weekdays
    ("How do I export all my photos?", "How do I export my photos?"),
    ("Can I book a single room on my own?", "Can I book a single room by myself?"),
    ("When is the pharmacy open Monday to Friday?", "When is the pharmacy open on weekdays?"),
    ("Is the pool open on Thursdy?", "Is the pool open on Thursday?"),
    # same class member or scale end on both sides; synonymous modifiers; prefix spelt out
    ("What does a flashing blue light mean?", "Why is the blue light flashing?"),
    ("How do I increase the volume?", "How do I make the sound louder and bigger?"),
    ("How do I get a replacement card?", "How do I get a new card?"),
    ("Does my membership auto-renew?", "Does my membership renew automatically?"),
]


@pytest.mark.parametrize("query,cached", ACCEPTED)
def test_accepts_paraphrases(verifier, embedder, query, cached):
    verdict = check(verifier, embedder, query, cached)
    assert verdict.accepted, verdict.detail
    assert verdict.reason is None


def test_rejections_are_counted_per_reason(verifier):
    verifier.verify("Is the shop open?", "Is the shop not open?")
    verifier.verify("Is the shop open?", "Is the shop not open?")
    verifier.verify("Trains at 5pm?", "Trains at 6pm?")
    verifier.verify("Is the shop open?", "Is the shop open?")
    assert verifier.rejection_counts() == dict.fromkeys(REASONS, 0) | {
        "negation": 2, "number_date": 1,
    }


def test_without_similarity_the_content_rule_is_skipped(verifier):
    verdict = verifier.verify("What shampoo is best for dogs?", "What shampoo is best for cats?")
    assert verdict.accepted


def test_restriction_is_accepted_when_the_embedding_vouches_for_it(verifier):
    query, cached = "How do I close my account?", "How do I close my joint account?"
    assert verifier.verify(query, cached, similarity=0.95).accepted
    assert verifier.verify(query, cached, similarity=0.90).reason == "scope"


def test_analysis_features():
    a = analyse("Can't I send £20 to Maria on 3 March at 7pm?")
    assert a.negation == 1
    assert a.numbers == ("20", "3", "7")
    assert {"march", "pm"} <= a.dates
    assert "maria" in a.entities
    assert stem("watering") == stem("water") and stem("closed") == stem("close")
    assert stem("children") == "child"
    assert analyse("Open Monday to Friday?").dates == {"weekday"}
    assert analyse("Open Saturday and Sunday?").dates == {"weekend"}
    assert analyse("Can I go on my own?").scope == frozenset()
    assert analyse("Delete all the files").scope == frozenset()
    assert analyse("Do all staff get it?").scope == {"all"}
